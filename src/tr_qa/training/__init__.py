"""Training and export of the span reader. Nothing at query time imports this package."""
