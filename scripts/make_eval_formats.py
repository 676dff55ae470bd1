"""Write the documents that eval/formats.jsonl asks about into eval/formats/: a three-page PDF report and an HTML
news article with navigation, a cookie banner, a footer and reader comments (the boilerplate must not be indexed).

The output is byte-for-byte the same on every run (reportlab's invariant mode fixes its dates and ids), so the
committed files can be checked against it. Needs reportlab (the project's test extra).

    .venv/bin/python scripts/make_eval_formats.py            # (re)write eval/formats/
    .venv/bin/tr-qa index --corpus eval/formats --index /tmp/formats-index
    .venv/bin/tr-qa eval --qa eval/formats.jsonl --index /tmp/formats-index
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from reportlab.pdfgen import canvas

OUT = Path(__file__).resolve().parents[1] / "eval" / "formats"

REPORT_PAGES = [
    [
        "Independent Monitoring Board: annual report for HMP Northfield, 2019",
        "The board is a group of unpaid members of the public who monitor the prison.",
        "Members made 214 visits to the prison during the reporting year.",
        "The prison held 1,142 men at the end of the reporting year, close to its capacity.",
        "Most of the men were serving sentences of less than four years.",
        "Applications to the board rose by a fifth, most of them about property and visits.",
        "Staff shortages meant that the regime was often curtailed at weekends.",
        "Men were locked in their cells for more than twenty hours a day on many weekends.",
        "The board observed the segregation unit on each of its rota visits.",
        "Healthcare waiting lists for mental health assessments exceeded eight weeks.",
        "The education contract was re-let during the year and classes stopped for a month.",
        "Work places were available for fewer than half of the men at any one time.",
    ],
    [
        "Resettlement",
        "Preparation for release is the responsibility of the community rehabilitation company.",
        "The company employed four resettlement workers for the whole prison.",
        "Each worker was expected to prepare a plan for every man within five days of arrival.",
        "The board found that many plans were copied from one man to the next.",
        "Only 38 per cent of men left the prison with settled accommodation.",
        "Several men told the board they expected to sleep rough on the night of release.",
        "Links with local councils in the region had weakened since the contract began.",
        "Bank accounts and identity documents were rarely arranged before release.",
    ],
    [
        "Staffing and the board",
        "The board had eleven members at the end of the year, against a complement of sixteen.",
        "The chair of the board is Margaret Oyelaran, who was appointed in 2018.",
        "The board recommends that the minister restore the resettlement budget cut in 2017.",
        "It also asks the governor to publish weekend regime figures every month.",
    ],
]

ARTICLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Probation staff strike over caseloads | Northern Evening Post</title>
<meta property="og:title" content="Probation staff strike over caseloads">
<meta property="og:site_name" content="Northern Evening Post">
<meta property="article:published_time" content="2019-07-15T18:30:00+01:00">
<meta name="author" content="Priya Shah">
<link rel="canonical" href="https://northern-evening-post.example/news/probation-strike">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",
"headline": "Probation staff strike over caseloads", "datePublished": "2019-07-15"}</script>
</head><body>
<div id="cookie-banner" class="cookie-consent">We use cookies to personalise adverts and measure our audience.
Accept all cookies or manage your choices.</div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li><li><a href="/jobs">Jobs</a></li></ul></nav></header>
<main><article>
<h1>Probation staff strike over caseloads</h1>
<p>Probation officers at the Leeds office of the community rehabilitation company walked out on Monday in a
dispute over workloads, the first strike at the office since the service was split in 2014.</p>
<p>The strike lasted 48 hours and about forty members of the union Napo took part, picketing outside the office
on Albion Street from seven in the morning.</p>
<h2>Caseloads</h2>
<p>Napo's regional organiser, Daniel Freeman, said caseloads had reached 70 people for each officer, against
a target of 45, and that newly qualified staff were being given cases of people convicted of violent offences.</p>
<p>The company said it had offered to recruit ten more officers by the autumn and regretted the union's decision
to take action while talks were continuing.</p>
<p>A Ministry of Justice spokesman said probation services would be brought back under a single national service
and that staff would be consulted on the changes.</p>
</article>
<section id="comments" class="comments"><h3>Comments</h3><ol class="comment-list">
<li class="comment"><div class="comment-content"><p>My wife is a probation officer in Wakefield and she routinely
works until nine at night just to keep her case records up to date.</p></div></li>
<li class="comment"><div class="comment-content"><p>Good on them. Nobody else is going to stand up for the
people on their caseloads.</p></div></li></ol>
<form><textarea>Leave a reply</textarea><button>Post comment</button></form></section>
</main>
<footer><p>Copyright 2019 Northern Evening Post. All rights reserved. Privacy policy. Terms of use.</p></footer>
</body></html>
"""


def report_pdf() -> bytes:
    """The monitoring board's report: three pages, one line of text per entry (reportlab, invariant)."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, invariant=True)
    pdf.setTitle("HMP Northfield Independent Monitoring Board annual report 2019")
    pdf.setAuthor("Independent Monitoring Board")
    for lines in REPORT_PAGES:
        for i, line in enumerate(lines):
            pdf.drawString(56, 760 - 18 * i, line)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def main() -> None:
    """Write the documents (and their metadata.json) into the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write into [default: {OUT}]")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    (out / "northfield-imb-2019.pdf").write_bytes(report_pdf())
    (out / "leeds-probation-strike.html").write_text(ARTICLE, encoding="utf-8")
    # The PDF states no publisher or date of its own (reportlab's fixed creation date is cleared).
    (out / "metadata.json").write_text(
        '{"northfield-imb-2019.pdf": {"outlet": "Independent Monitoring Board", "kind": "report",'
        ' "published": null}}\n',
        encoding="utf-8",
    )
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")


if __name__ == "__main__":
    main()
