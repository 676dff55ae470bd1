/*! tr-qa embed, part 2: the conversation of <tr-qa-chat> (source: src/tr_qa/static/embed-chat.js). */
/*
 * Loaded by embed.js (never on its own) when a visitor opens the launcher, or at once for an inline chat; it adds
 * its methods to the element and asks the chat server's POST /api/ask. Everything from the server or the visitor
 * is put in the page with text nodes and textContent only, never parsed as HTML.
 */
(() => {
  "use strict";

  const Chat = window.customElements && window.customElements.get("tr-qa-chat");
  if (!Chat || typeof Chat.install !== "function" || Chat.part) return;
  const { el, fill, isText, safeHttpUrl, addStyles } = Chat.helpers;

  // Filled in by the server when it serves this file: the conversation's stylesheet.
  const SHEET = "__TR_QA_CHAT_CSS__";
  const MAX_QUESTION = 1000; // the server's limit for web questions
  const RETRY_WAIT_MAX_S = 5; // a busy server asking for a longer wait is not retried automatically
  const EXCERPT_CONTEXT = 120; // characters of context either side of a passage's highlights

  const STRINGS = {
    placeholder: "Ask a question about the documents",
    label: "Your question",
    ask: "Ask",
    intro: "Answers are quoted from the documents, each with a link to its source.",
    examples: "Try an example:",
    you: "You asked:",
    thinking: "Looking through the documents",
    strong: "Answer",
    weak: "Best guess, weak evidence",
    none: "The documents don't answer this",
    weakNote: "The passage below may not answer the question; check it.",
    nearest: "These are the nearest passages:",
    noPassages: "No passages were found.",
    readSource: "Read it in the document",
    original: "Original",
    page: "page {n}",
    comment: "from a reader comment",
    by: "by {name}",
    more: "{n} more passages",
    moreOne: "1 more passage",
    rejected: "Sorry, I can't take that question: {reason}",
    empty: "Please type a question first.",
  };

  const isOffset = (value) => Number.isInteger(value) && value >= 0;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);
  /** The text in code points: the server's offsets count code points, JavaScript strings count UTF-16 units. */
  const points = (text) => Array.from(text);

  function isPassage(p) {
    return p && typeof p === "object" && typeof p.doc === "string" && typeof p.text === "string" &&
      isOffset(p.start) && isOffset(p.end);
  }

  /** A passage's well-formed highlights (document offsets, kind "sentence" or "answer"). */
  function highlightsOf(p) {
    const list = Array.isArray(p.highlights) ? p.highlights : [];
    return list.filter((h) => h && isOffset(h.start) && isOffset(h.end) && h.end > h.start &&
      (h.kind === "sentence" || h.kind === "answer"));
  }

  /** `chars` (code points from document offset `offset`) with the sentence in <mark> and the short answer in
   * <strong> inside it, as the full chat marks them. */
  function marked(chars, offset, highlights) {
    const kinds = new Array(chars.length).fill(null);
    for (const wanted of ["sentence", "answer"]) {
      for (const h of highlights) {
        if (h.kind !== wanted) continue;
        for (let i = Math.max(0, h.start - offset); i < Math.min(chars.length, h.end - offset); i++) kinds[i] = wanted;
      }
    }
    const out = document.createDocumentFragment();
    let mark = null;
    let start = 0;
    for (let i = 1; i <= chars.length; i++) {
      if (i < chars.length && kinds[i] === kinds[start]) continue;
      const run = chars.slice(start, i).join("");
      const kind = kinds[start];
      if (kind === null) {
        mark = null;
      } else if (mark === null) {
        mark = el("mark");
        out.append(mark);
      }
      (mark || out).append(kind === "answer" ? el("strong", "", run) : document.createTextNode(run));
      start = i;
    }
    return out;
  }

  /** [start, end) of a short window around the passage's highlights, cut at spaces (the link has the rest). */
  function excerptBounds(p, chars, highlights) {
    const ps = p.start;
    const pe = p.start + chars.length;
    let hlStart = ps;
    let hlEnd = ps;
    let start = ps;
    let end = Math.min(pe, ps + 2 * EXCERPT_CONTEXT);
    if (highlights.length) {
      hlStart = Math.min(...highlights.map((h) => h.start));
      hlEnd = Math.max(...highlights.map((h) => h.end));
      start = Math.max(ps, hlStart - EXCERPT_CONTEXT);
      end = Math.min(pe, hlEnd + EXCERPT_CONTEXT);
    }
    if (start > ps) {
      const space = chars.slice(start - ps, Math.max(start, hlStart) - ps).indexOf(" ");
      if (space !== -1) start += space + 1;
    }
    if (end < pe) {
      const from = Math.min(Math.max(0, hlEnd - ps), end - ps);
      const space = chars.slice(from, end - ps).lastIndexOf(" ");
      if (space !== -1) end = ps + from + space;
    }
    return [start, end];
  }

  /** Seconds from a Retry-After header, else from the "try again in N s" of the error message, else `fallback`. */
  function retryAfter(response, message, fallback) {
    const header = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    if (Number.isFinite(header) && header >= 0) return header;
    const match = /(\d+)\s*s\b/.exec(message || "");
    return match ? Number(match[1]) : fallback;
  }

  const methods = {
    /** Replace the "loading" line with the conversation: the log (intro, examples) and the question box. */
    _mountChat() {
      addStyles(this.shadowRoot, SHEET, "embed-chat.css", "--tr-qa-chat-styled");
      this.log = el("div", "log");
      this.log.setAttribute("role", "log");
      this.log.setAttribute("aria-live", "polite");
      this.log.setAttribute("aria-labelledby", "title");
      this.log.tabIndex = 0; // scrollable, so keyboard users must be able to reach and scroll it
      this.log.append(this._intro());

      const form = el("form", "ask");
      form.setAttribute("part", "form");
      form.noValidate = true;
      const label = el("label", "vh", this.t.label);
      label.htmlFor = "question";
      this.input = el("input");
      Object.assign(this.input, { id: "question", type: "text", maxLength: MAX_QUESTION, autocomplete: "off" });
      this.input.placeholder = this.s.placeholder || this.t.placeholder;
      this.input.setAttribute("enterkeyhint", "send");
      this.send = el("button", "send", this.t.ask);
      this.send.type = "submit";
      form.append(label, this.input, this.send);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this._safely(() => this.ask(this.input.value));
      });
      const notice = this.body.querySelector(".state");
      this.body.replaceChildren(this.log, form);
      if (notice) this._show(notice);
      if (this.s.mode === "inline") {
        // An inline chat learns whether the server can be reached when a visitor starts to use it, not on every
        // page view; a launcher's visitor has just opened it.
        this.input.addEventListener("focus", () => this._safely(() => this._probe()), { once: true });
      } else {
        this._safely(() => this._probe());
      }
    },

    _focusChat() {
      if (this.input) this.input.focus();
    },

    _intro() {
      const intro = el("div", "intro-block");
      intro.append(el("p", "intro", this.t.intro));
      if (this.s.examples.length) {
        const heading = el("p", "intro", this.t.examples);
        heading.id = "examples-label";
        const list = el("ul", "examples");
        list.setAttribute("aria-labelledby", heading.id);
        for (const question of this.s.examples) {
          const button = el("button", "example", question);
          button.type = "button";
          button.addEventListener("click", () => {
            this.input.value = question;
            this._safely(() => this.ask(question));
          });
          const item = el("li");
          item.append(button);
          list.append(item);
        }
        intro.append(heading, list);
      }
      return intro;
    },

    /** Ask the server once whether it can be reached from this page; say so at once if not. */
    async _probe() {
      if (this._healthy || this._probing) return;
      this._probing = true;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), Math.min(this.s.timeoutMs, 10000));
      try {
        const response = await fetch(`${this.s.server}healthz`, {
          signal: controller.signal,
          credentials: "omit",
          cache: "no-store",
        });
        this._healthy = response.ok;
        if (!response.ok) this._notice("unavailable");
      } catch (_) {
        this._notice(controller.signal.aborted ? "slow" : "unavailable");
      } finally {
        clearTimeout(timer);
        this._probing = false;
      }
    },

    /** Ask a question and show the answer (or why there is none). Never throws. */
    async ask(question) {
      if (!this.log) return;
      const text = String(question || "").trim().slice(0, MAX_QUESTION);
      if (!text) {
        this._show(el("p", "msg note", this.t.empty));
        this.input.focus();
        return;
      }
      if (this._pending) return; // one question at a time
      const controller = new AbortController();
      this._pending = controller;
      this.send.setAttribute("aria-disabled", "true");
      this.log.setAttribute("aria-busy", "true");
      const mine = el("p", "msg user");
      mine.append(el("span", "vh", `${this.t.you} `), text);
      this._show(mine);
      const thinking = this._show(el("p", "msg thinking", this.t.thinking));
      let outcome;
      try {
        outcome = await this._request(text, controller);
      } catch (_) {
        outcome = { kind: "unavailable" };
      }
      if (this._pending !== controller) return; // rebuilt or removed meanwhile
      this._pending = null;
      thinking.remove();
      this.send.removeAttribute("aria-disabled");
      this.log.removeAttribute("aria-busy");
      if (outcome.kind === "answer") {
        this._healthy = true;
        this._clearNotices();
        this._show(this._result(outcome.data));
        if (this.input.value.trim() === text) this.input.value = "";
      } else if (outcome.kind === "rejected") {
        this._show(el("p", "msg notice", fill(this.t.rejected, { reason: outcome.message })));
      } else {
        this._notice(outcome.kind, outcome.seconds);
      }
    },

    /** POST /api/ask with a timeout, tried once more when the server is unreachable, slow or briefly busy. */
    async _request(question, controller) {
      let outcome = null;
      for (let attempt = 0; attempt < 2; attempt++) {
        if (attempt === 1) {
          const wait = outcome.kind === "busy" ? outcome.seconds : 1;
          if (wait > RETRY_WAIT_MAX_S) return outcome;
          await sleep(wait * 1000);
        }
        if (controller.signal.aborted) return { kind: "unavailable" };
        outcome = await this._post(question, controller);
        if (!["unavailable", "slow", "busy"].includes(outcome.kind)) return outcome;
      }
      return outcome;
    },

    async _post(question, outer) {
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.s.timeoutMs);
      const stop = () => controller.abort();
      outer.signal.addEventListener("abort", stop);
      try {
        const response = await fetch(`${this.s.server}api/ask`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ question, k: this.s.passages }),
          signal: controller.signal,
          credentials: "omit",
          cache: "no-store",
        });
        let data = null;
        try {
          data = await response.json();
        } catch (_) {
          data = null;
        }
        const message = data && typeof data.error === "string" ? data.error : "";
        if (response.ok) {
          const usable = data && typeof data === "object" && Array.isArray(data.passages);
          return usable ? { kind: "answer", data } : { kind: "unavailable" };
        }
        if (response.status === 429) return { kind: "rateLimited", seconds: retryAfter(response, message, 60) };
        if (response.status === 503) return { kind: "busy", seconds: retryAfter(response, message, 10) };
        if (response.status === 400 && message) return { kind: "rejected", message };
        return { kind: "unavailable" };
      } catch (_) {
        // A refused origin (CORS), a server that is down and a dropped connection all end here, alike.
        return { kind: timedOut ? "slow" : "unavailable" };
      } finally {
        clearTimeout(timer);
        outer.signal.removeEventListener("abort", stop);
      }
    },

    /** Append a message and scroll the log (only the log, never the host page) to its start. */
    _show(node) {
      this.log.append(node);
      const top = node.getBoundingClientRect().top - this.log.getBoundingClientRect().top;
      this.log.scrollTop += top - 8;
      return node;
    },

    _label(evidence, words) {
      const key = evidence === "weak" ? "weak" : evidence === "none" ? "none" : "strong";
      if (isText(this.s.custom[key])) return this.s.custom[key];
      return isText(words) ? capitalised(words.trim()) : this.t[key];
    },

    /** One answer message: the verdict, the answer, its quoted source and the other passages folded away. */
    _result(data) {
      const msg = el("div", "msg bot");
      const passages = (Array.isArray(data.passages) ? data.passages : []).filter(isPassage);
      const answer = !data.abstained && data.answer && isText(data.answer.text) ? data.answer : null;
      const evidence = answer ? (data.evidence === "weak" ? "weak" : "strong") : "none";
      const words = data.evidence === evidence ? data.evidence_words : "";
      const line = el("p", "answer");
      if (answer) {
        line.append(el("span", "verdict", this._label(evidence, words)), ": ", this._answer(answer));
        msg.append(line);
        if (evidence === "weak") msg.append(el("p", "note", this.t.weakNote));
      } else {
        // No short answer here, in bold or otherwise: the verdict, then the nearest passages.
        line.append(el("span", "verdict", `${this._label("none", words)}.`), " ");
        line.append(passages.length ? this.t.nearest : this.t.noPassages);
        msg.append(line);
      }
      const shown = passages.slice(0, this.s.passages);
      // The passage holding the answer goes first (the server ranks it first; this guards against reordering).
      const lead = answer
        ? shown.findIndex((p) => p.doc === answer.doc && p.start <= answer.start && answer.end <= p.end)
        : -1;
      if (lead > 0) shown.unshift(...shown.splice(lead, 1));
      if (shown.length) msg.append(this._source(shown[0]));
      if (shown.length > 1) {
        const more = el("details", "more");
        const count = shown.length - 1;
        more.append(el("summary", "", count === 1 ? this.t.moreOne : fill(this.t.more, { n: count })));
        for (const p of shown.slice(1)) more.append(this._source(p));
        msg.append(more);
      }
      return msg;
    },

    /** The answer as the chat shows it: the short answer in bold, inside its sentence for why/how questions. */
    _answer(answer) {
      const mark = el("mark");
      const sentence = answer.sentence;
      const chars = sentence && typeof sentence.text === "string" ? points(sentence.text) : null;
      const fits = chars && isOffset(sentence.start) && isOffset(answer.start) &&
        sentence.end - sentence.start === chars.length && sentence.start <= answer.start &&
        answer.start < answer.end && answer.end <= sentence.end;
      if (answer.display === "sentence" && fits) {
        const a = answer.start - sentence.start;
        const b = answer.end - sentence.start;
        mark.append(chars.slice(0, a).join(""), el("strong", "", chars.slice(a, b).join("")), chars.slice(b).join(""));
      } else {
        mark.append(el("strong", "", answer.text));
      }
      return mark;
    },

    /** A passage: the marked excerpt, then its citation (title, outlet, date, page) and the link to it. */
    _source(p) {
      const figure = el("figure", "source");
      const chars = points(p.text);
      const highlights = highlightsOf(p);
      const [start, end] = excerptBounds(p, chars, highlights);
      const quote = el("blockquote", "quote");
      if (start > p.start) quote.append("… ");
      quote.append(marked(chars.slice(start - p.start, end - p.start), start, highlights));
      if (end < p.start + chars.length) quote.append(" …");
      figure.append(quote);

      const caption = el("figcaption", "cite");
      caption.append(el("cite", "", isText(p.title) ? p.title : p.doc));
      const meta = p.meta && typeof p.meta === "object" ? p.meta : {};
      const details = [];
      if (isText(meta.outlet)) details.push(meta.outlet.trim());
      if (isText(meta.author)) details.push(fill(this.t.by, { name: meta.author.trim() }));
      if (isText(meta.published)) details.push(this._date(meta.published.trim()));
      if (Number.isInteger(p.page) && p.page > 0) details.push(fill(this.t.page, { n: p.page }));
      if (p.from_comment === true) details.push(this.t.comment);
      if (details.length) caption.append(` · ${details.join(" · ")}`);
      caption.append(el("br"), this._link(this.t.readSource, this._docHref(p, highlights), "noopener"));
      const original = safeHttpUrl(meta.url);
      if (original && /^https?:/.test(meta.url.trim())) {
        caption.append(" · ", this._link(this.t.original, original, "noopener noreferrer"));
      }
      figure.append(caption);
      return figure;
    },

    _link(text, href, rel) {
      const link = el("a", "", text);
      link.href = href;
      link.target = "_blank";
      link.rel = rel;
      link.append(" ", el("span", "vh", this.t.newTab));
      return link;
    },

    /** The document page on the chat server with the passage's sentence (and answer) highlighted. */
    _docHref(p, highlights) {
      const sentence = highlights.find((h) => h.kind === "sentence");
      const answer = highlights.find((h) => h.kind === "answer");
      const [start, end] = sentence ? [sentence.start, sentence.end] : [p.start, p.end];
      const path = p.doc.split("/").map(encodeURIComponent).join("/");
      let query = `start=${start}&end=${end}`;
      if (answer) query += `&astart=${answer.start}&aend=${answer.end}`;
      return `${this.s.server}doc/${path}?${query}#hl`;
    },

    _date(iso) {
      const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
      if (!match) return iso;
      try {
        const format = new Intl.DateTimeFormat(this.s.lang || undefined, {
          day: "numeric",
          month: "long",
          year: "numeric",
          timeZone: "UTC",
        });
        return format.format(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
      } catch (_) {
        return iso;
      }
    },
  };

  Chat.install({ strings: STRINGS, methods });
})();
