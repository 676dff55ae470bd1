/*! tr-qa embed: the <tr-qa-chat> element, from the tr-qa chat server (source: src/tr_qa/static/embed.js). */
/*
 * Use:
 *   <script src="https://chat.example.org/embed.js" defer></script>
 *   <tr-qa-chat mode="launcher"></tr-qa-chat>                           a button that opens a chat panel
 *   <tr-qa-chat mode="inline" heading="Ask the archive"></tr-qa-chat>   a chat block in the page
 *
 * Attributes: mode (launcher | inline), heading, placeholder, examples (a JSON array or "a | b | c"), brand (a CSS
 * colour), position (bottom-right | bottom-left), lang, server (the chat's URL; default: where this script came
 * from), timeout (seconds), passages (how many to show). The same keys, plus "strings" (the interface's words), can
 * come from a <script type="application/json"> inside the element or from the element's `config` property.
 *
 * This file is the frame: the element, the launcher, the panel and the "unavailable" state. The conversation
 * itself (embed-chat.js, from the same place as this file) loads when a visitor opens the launcher, or at once
 * for an inline chat. Text from the server or the visitor is only ever put in the page as text, never as HTML.
 * Styles are constructable stylesheets (a strict style-src allows them) or, in browsers without them, a <link> to
 * embed.css. No error escapes to the host page. The server removes these comments when it serves the file.
 */
(() => {
  "use strict";

  const TAG = "tr-qa-chat";
  if (typeof window === "undefined" || !window.customElements || window.customElements.get(TAG)) return;

  // Filled in by the server when it serves this file: the frame's stylesheet, and a hash of all the embed's files.
  const SHEET = "__TR_QA_CSS__";
  const VERSION = "__TR_QA_VERSION__";

  const script = document.currentScript || document.querySelector('script[src*="/embed.js"]');
  const SCRIPT_BASE = script && script.src ? new URL(".", script.src).href : "";

  const STRINGS = {
    heading: "Ask the archive",
    open: "Ask a question",
    close: "Close",
    loading: "Loading the chat…",
    unavailable: "The chat is unavailable right now.",
    slow: "The chat is not answering in time right now.",
    busy: "The chat is busy right now. Please try again in {s} seconds.",
    rateLimited: "You have asked many questions in a short time. Please try again in {s} seconds.",
    tryLater: "Please try again later, or use the full chat:",
    fullChat: "Open the full chat",
    newTab: "(opens in a new tab)",
  };

  const isText = (value) => typeof value === "string" && value.trim() !== "";

  /** An element with a class and text content (text only: never HTML). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
  }

  function safeHttpUrl(value) {
    if (!isText(value)) return null;
    try {
      const url = new URL(value, document.baseURI);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function parseExamples(value) {
    if (Array.isArray(value)) return value.filter(isText).map((q) => q.trim());
    if (!isText(value)) return [];
    const text = value.trim();
    if (text.startsWith("[")) {
      try {
        return parseExamples(JSON.parse(text));
      } catch (_) {
        return [];
      }
    }
    return text.split("|").filter(isText).map((q) => q.trim());
  }

  const sheets = new Map(); // one constructable stylesheet per text, shared by every element on the page

  /** Style a shadow root with `cssText`, or with a <link> to `file` where constructable sheets are missing (or
   * did not apply, which `probe`, a custom property the sheet sets on .root, tells). */
  function addStyles(root, cssText, file, probe) {
    let sheet = sheets.get(cssText);
    if (sheet === undefined) {
      sheet = null;
      try {
        if (!cssText.startsWith("__TR_QA") && "adoptedStyleSheets" in Document.prototype) {
          sheet = new CSSStyleSheet();
          sheet.replaceSync(cssText);
        }
      } catch (_) {
        sheet = null;
      }
      sheets.set(cssText, sheet);
    }
    if (sheet) root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    const wrap = root.querySelector(".root");
    if (!sheet || !wrap || getComputedStyle(wrap).getPropertyValue(probe).trim() !== "1") {
      const link = el("link");
      link.rel = "stylesheet";
      link.href = `${SCRIPT_BASE}${file}?v=${encodeURIComponent(VERSION)}`;
      root.prepend(link);
    }
  }

  function chatIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.append(path);
    return svg;
  }

  class TrQaChat extends HTMLElement {
    static get observedAttributes() {
      return ["mode", "heading", "placeholder", "examples", "brand", "position", "lang", "server", "timeout",
        "passages"];
    }

    /** Called by embed-chat.js when it has loaded: the conversation's methods and strings. */
    static install(part) {
      if (TrQaChat.part || !part || typeof part !== "object") return;
      Object.assign(TrQaChat.prototype, part.methods);
      TrQaChat.part = part;
    }

    /** Load embed-chat.js once for the page; resolves when it has installed itself. */
    static loadChat(timeoutMs) {
      if (TrQaChat.part) return Promise.resolve();
      if (!TrQaChat.loading) {
        TrQaChat.loading = new Promise((resolve, reject) => {
          const tag = document.createElement("script");
          let timer = 0;
          const done = (ok, why) => {
            clearTimeout(timer);
            if (ok && TrQaChat.part) {
              resolve();
              return;
            }
            tag.remove();
            TrQaChat.loading = null; // the next attempt loads it afresh
            reject(new Error(why));
          };
          timer = setTimeout(() => done(false, "slow"), timeoutMs);
          tag.addEventListener("load", () => done(true, "unavailable"));
          tag.addEventListener("error", () => done(false, "unavailable"));
          tag.async = true;
          tag.src = `${SCRIPT_BASE}embed-chat.js?v=${encodeURIComponent(VERSION)}`;
          document.head.append(tag);
        });
      }
      return TrQaChat.loading;
    }

    constructor() {
      super();
      this._config = null;
      this._built = false;
      this._pending = null; // the AbortController of the question being answered (embed-chat.js)
      this.launcher = null;
    }

    /** Settings from a script, e.g. el.config = {heading: "…", examples: [...], strings: {ask: "Send"}}. */
    get config() {
      return this._config;
    }

    set config(value) {
      this._config = value && typeof value === "object" ? value : null;
      if (this._built) this._safely(() => this._build());
    }

    connectedCallback() {
      if (!this._built) this._safely(() => this._build());
    }

    disconnectedCallback() {
      if (this._pending) this._pending.abort();
    }

    attributeChangedCallback(_name, oldValue, newValue) {
      if (this._built && oldValue !== newValue) this._safely(() => this._build());
    }

    /** Run `fn`, keeping any error (thrown or rejected) away from the host page. */
    _safely(fn) {
      try {
        const result = fn();
        if (result && typeof result.catch === "function") result.catch(() => {});
      } catch (_) {
        // Nothing to do: the host page must keep working whatever happens here.
      }
    }

    _settings() {
      let fromJson = {};
      const data = this.querySelector('script[type="application/json"]');
      if (data) {
        try {
          const parsed = JSON.parse(data.textContent || "{}");
          if (parsed && typeof parsed === "object") fromJson = parsed;
        } catch (_) {
          fromJson = {};
        }
      }
      const given = { ...fromJson, ...(this._config || {}) };
      const pick = (name) => (this.hasAttribute(name) ? this.getAttribute(name) : given[name]);
      const custom = given.strings && typeof given.strings === "object" ? given.strings : {};
      const server = safeHttpUrl(pick("server")) || SCRIPT_BASE;
      const timeout = Number(pick("timeout"));
      const passages = Number.parseInt(pick("passages"), 10);
      return {
        mode: pick("mode") === "inline" ? "inline" : "launcher",
        heading: [pick("heading"), given.title].find(isText) || "",
        placeholder: isText(pick("placeholder")) ? pick("placeholder") : "",
        examples: parseExamples(pick("examples")),
        brand: isText(pick("brand")) ? pick("brand").trim() : "",
        left: pick("position") === "bottom-left",
        lang: isText(pick("lang")) ? pick("lang") : "",
        server: server.endsWith("/") ? server : `${server}/`,
        timeoutMs: Number.isFinite(timeout) && timeout > 0 ? Math.min(timeout, 300) * 1000 : 30000,
        passages: Number.isFinite(passages) ? Math.max(1, Math.min(passages, 10)) : 3,
        custom: Object.fromEntries(Object.entries(custom).filter(([, value]) => isText(value))),
      };
    }

    /** The interface's words: the defaults, the conversation's own defaults once loaded, then the page's own. */
    _strings() {
      return { ...STRINGS, ...(TrQaChat.part ? TrQaChat.part.strings : {}), ...this.s.custom };
    }

    _build() {
      const s = this._settings();
      this.s = s;
      this.t = this._strings();
      if (this._pending) this._pending.abort();
      this._pending = null;
      this._chat = false;
      this.log = null;
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      root.replaceChildren();
      root.adoptedStyleSheets = [];

      const wrap = el("div", "root");
      wrap.setAttribute("part", "root");
      if (s.lang) wrap.lang = s.lang;
      if (s.mode === "launcher") wrap.classList.add("launch");
      if (s.left) wrap.classList.add("left");
      if (s.brand && window.CSS && window.CSS.supports("color", s.brand)) {
        wrap.style.setProperty("--tr-qa-brand", s.brand); // CSSOM, which a strict style-src allows
      }
      root.append(wrap);
      this.wrap = wrap;

      const panel = el("section", "panel");
      panel.id = "panel";
      panel.setAttribute("part", "panel");
      panel.setAttribute("aria-labelledby", "title");
      const head = el("header", "head");
      const title = el("h2", "", s.heading || this.t.heading);
      title.id = "title";
      head.append(title);
      this.body = el("div", "body");
      this.body.append(el("p", "loading", this.t.loading));
      const foot = el("p", "foot");
      foot.append(this._fullChatLink());
      panel.append(head, this.body, foot);
      this.panel = panel;

      if (s.mode === "launcher") {
        panel.setAttribute("role", "dialog");
        panel.hidden = true;
        const close = el("button", "close");
        close.type = "button";
        close.setAttribute("aria-label", this.t.close);
        const cross = el("span", "", "×");
        cross.setAttribute("aria-hidden", "true");
        close.append(cross);
        close.addEventListener("click", () => this.close());
        head.append(close);
        const launcher = el("button", "launcher");
        launcher.type = "button";
        launcher.setAttribute("part", "launcher");
        launcher.setAttribute("aria-expanded", "false");
        launcher.setAttribute("aria-controls", "panel");
        launcher.append(chatIcon(), el("span", "", this.t.open));
        launcher.addEventListener("click", () => this._safely(() => (panel.hidden ? this.open() : this.close())));
        // A visitor about to open it: fetch the conversation now, so it is there by the click.
        for (const intent of ["pointerenter", "focus", "touchstart"]) {
          launcher.addEventListener(intent, () => this._safely(() => TrQaChat.loadChat(s.timeoutMs)), {
            once: true,
            passive: true,
          });
        }
        wrap.append(launcher);
        wrap.addEventListener("keydown", (event) => this._safely(() => this._dialogKeys(event)));
        this.launcher = launcher;
      }
      wrap.append(panel);
      addStyles(root, SHEET, "embed.css", "--tr-qa-styled");
      this._built = true;
      if (s.mode === "inline") this._safely(() => this._startChat(false));
    }

    /** Load the conversation if needed and show it; the unavailable state if it cannot be loaded. */
    async _startChat(focus) {
      if (!this._chat) {
        try {
          await TrQaChat.loadChat(this.s.timeoutMs);
        } catch (error) {
          this._notice(error && error.message === "slow" ? "slow" : "unavailable");
          return;
        }
        if (!this._chat) {
          this.t = this._strings();
          this._chat = true;
          this._mountChat(); // from embed-chat.js
        }
      }
      if (focus) this._focusChat();
    }

    _fullChatLink() {
      const link = el("a", "", this.t.fullChat);
      link.href = this.s.server;
      link.target = "_blank";
      link.rel = "noopener";
      link.append(" ", el("span", "vh", this.t.newTab));
      return link;
    }

    /** Open the launcher's panel and put the cursor in the question box. */
    open() {
      if (!this._built || !this.launcher) return;
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      if (!this._chat) this.panel.querySelector(".close").focus(); // until the question box exists
      this._safely(() => this._startChat(true));
    }

    /** Close the launcher's panel and give the focus back to the launcher. */
    close() {
      if (!this._built || !this.launcher) return;
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
    }

    _dialogKeys(event) {
      if (this.panel.hidden) return;
      if (event.key === "Escape") {
        event.stopPropagation();
        this.close();
        return;
      }
      if (event.key !== "Tab") return;
      // The open panel is a dialog (on a phone it covers the page): Tab cycles through it.
      const focusable = [...this.panel.querySelectorAll("a[href], button, input, summary, [tabindex='0']")]
        .filter((node) => node.getClientRects().length > 0);
      if (!focusable.length) return;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      const active = this.shadowRoot.activeElement;
      if (event.shiftKey && active === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
    }

    /** Remove any earlier notice (the conversation works again). */
    _clearNotices() {
      for (const node of this.panel.querySelectorAll(".state")) node.remove();
    }

    /** The "cannot answer right now" state: what happened, and the way to the full chat. */
    _notice(kind, seconds) {
      const t = this.t;
      const words = {
        unavailable: t.unavailable,
        slow: t.slow,
        busy: fill(t.busy, { s: seconds }),
        rateLimited: fill(t.rateLimited, { s: seconds }),
      };
      this._clearNotices();
      const box = el("div", "msg notice state");
      box.dataset.state = kind in words ? kind : "unavailable";
      const hint = el("p", "", `${t.tryLater} `);
      hint.append(this._fullChatLink());
      box.append(el("p", "", words[kind] || t.unavailable), hint);
      if (this.log) {
        this._show(box); // from embed-chat.js; the log announces it
      } else {
        box.setAttribute("role", "status");
        this.body.replaceChildren(box);
      }
      return box;
    }
  }

  TrQaChat.part = null;
  TrQaChat.loading = null;
  TrQaChat.helpers = { el, fill, isText, safeHttpUrl, addStyles }; // shared with embed-chat.js

  try {
    window.customElements.define(TAG, TrQaChat);
  } catch (_) {
    // Defined by another copy of this script in the meantime: that one serves the page.
  }
})();
