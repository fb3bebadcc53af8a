/* app.js - lode's web page: search, chat, documents and the status strip,
 * over the server's own HTTP API (README "HTTP API").
 *
 * No framework and no build step: the DOM is built with el() from text
 * nodes only (never innerHTML), so nothing a document or an answer holds
 * can become markup.  The page never sends a request the server would
 * refuse for a reason it can see first: it waits for the model to load
 * (/model-status, which answers 200 while loading), and searches or lists
 * only collections that exist.  State that should survive a reload (the
 * key, the collection, the conversation) lives in sessionStorage: it is
 * kept by the tab, not sent anywhere. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const store = {
    get(k, d) {
      try { const v = sessionStorage.getItem("lode." + k); return v === null ? d : JSON.parse(v); }
      catch (e) { return d; }
    },
    set(k, v) {
      try { sessionStorage.setItem("lode." + k, JSON.stringify(v)); } catch (e) { /* private mode */ }
    },
  };

  const state = {
    key: store.get("key", ""),
    collection: store.get("collection", null),
    collections: new Map(),      // name -> {documents, chunks}
    defaultCollection: "default",
    loaded: false,
    waiters: [],
    statusTimer: 0,
    turns: [],                   // chat: {question, collection, done, error}
    chatBusy: false,
    docs: new Map(),             // "coll/id" -> document (cache)
    docsShown: 0,
    docsGeneration: 0,
    opener: null,
  };

  /* ---- helpers ---------------------------------------------------------- */

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }

  class ApiError extends Error {
    constructor(status, message, code) { super(message); this.status = status; this.code = code; }
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    if (state.key) h.Authorization = "Bearer " + state.key;
    return h;
  }

  async function errorOf(r) {
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    const e = body && body.error;
    return new ApiError(r.status, e ? e.message : "HTTP " + r.status, e ? e.code : "http");
  }

  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", headers: authHeaders() };
    if (opts.json !== undefined) {
      init.body = JSON.stringify(opts.json);
      init.headers["Content-Type"] = "application/json";
    }
    let r;
    try { r = await fetch(path, init); }
    catch (e) { throw new ApiError(0, "the server did not answer", "network"); }
    if (!r.ok) throw await errorOf(r);
    return r.json();
  }

  function explain(e) {
    if (e.status === 401) return e.message + " (enter the key under Documents)";
    return e.message;
  }

  function showError(e) {
    const n = $("error-note");
    n.textContent = e ? explain(e) : "";
    n.hidden = !e;
  }

  const STOP = new Set(("a an and are as at be by can do does did for from get got has have how i if in " +
    "into is it its me my of on or our so than that the their them then there these they this to was " +
    "we were what when where which who why will with you your many much any not").split(" "));

  function queryWords(q) {
    const words = (q.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => w.length > 1 && !STOP.has(w));
    return [...new Set(words)];
  }

  /* Does a word of the text match a query word?  Equal, or one a prefix of
   * the other of at least 4 letters (water / watered / watering). */
  function wordMatches(token, words) {
    const t = token.toLowerCase();
    return words.some((w) => t === w ||
      (Math.min(t.length, w.length) >= 4 && (t.startsWith(w) || w.startsWith(t))));
  }

  /* Text with the query's words in <mark>. */
  function marked(text, words) {
    const frag = document.createDocumentFragment();
    const re = /[\p{L}\p{N}]+/gu;
    let pos = 0, m;
    while ((m = re.exec(text))) {
      if (!wordMatches(m[0], words)) continue;
      frag.append(text.slice(pos, m.index), el("mark", { text: m[0] }));
      pos = m.index + m[0].length;
    }
    frag.append(text.slice(pos));
    return frag;
  }

  /* A window of the text around the first matching word. */
  function snippet(text, words, size) {
    const flat = text.replace(/\s+/g, " ").trim();
    if (flat.length <= size) return flat;
    const re = /[\p{L}\p{N}]+/gu;
    let first = 0, m;
    while ((m = re.exec(flat))) if (wordMatches(m[0], words)) { first = m.index; break; }
    let start = Math.max(0, first - Math.floor(size / 3));
    if (start > 0) { const sp = flat.indexOf(" ", start); start = sp >= 0 && sp < first ? sp + 1 : start; }
    let end = Math.min(flat.length, start + size);
    if (end < flat.length) { const sp = flat.lastIndexOf(" ", end); if (sp > start + size / 2) end = sp; }
    return (start > 0 ? "… " : "") + flat.slice(start, end) + (end < flat.length ? " …" : "");
  }

  function docPath(r) {
    return [r.source, r.heading].filter(Boolean).join(" · ");
  }

  /* ---- the status strip ------------------------------------------------- */

  function setStatus(id, text, cls) {
    const e = $(id);
    e.textContent = text;
    e.className = cls || "";
  }

  async function refreshStatus() {
    clearTimeout(state.statusTimer);   // one chain of polls, also when called early
    let next = 10000;
    try {
      const ms = await api("/model-status");
      state.loaded = ms.model_loaded;
      if (ms.model_loaded) {
        setStatus("st-model", ms.model.name + " (" + ms.model.type + ", loaded)", "ok");
      } else if (ms.model_loading) {
        setStatus("st-model", "loading…", "");
        next = 1000;
      } else {
        setStatus("st-model", ms.model_error ? "failed: " + ms.model_error : "not loaded", "bad");
        next = 3000;
      }
      $("loading-note").hidden = ms.model_loaded;
      if (ms.model_loaded) {
        const waiting = state.waiters.splice(0);
        waiting.forEach((f) => f());
        const [h, mem] = await Promise.all([api("/health"), api("/memory-status")]);
        const limit = mem.system_memory.total_mb;
        setStatus("st-memory", Math.round(mem.process.rss_mb) + " MB of " + Math.round(limit) + " MB" +
          (mem.memory_pressure ? " (under pressure)" : ""), mem.memory_pressure ? "bad" : "");
        setStatus("st-chunks", h.store.chunks + " in " + h.store.documents + " documents");
        if (h.llm.configured) {
          const b = h.llm.breaker.state;
          setStatus("st-llm", h.llm.model + ", breaker " + b, b === "closed" ? "ok" : "bad");
        } else {
          setStatus("st-llm", "none: answers come from the documents", "");
        }
      }
      showError(null);
    } catch (e) {
      showError(e);
      next = 5000;
    }
    state.statusTimer = setTimeout(refreshStatus, next);
  }

  /* Resolves once the model is loaded (at once when it is). */
  function modelReady() {
    if (state.loaded) return Promise.resolve();
    $("loading-note").hidden = false;
    return new Promise((resolve) => state.waiters.push(resolve));
  }

  /* ---- collections -------------------------------------------------------- */

  /* The collection picker from the server; relist: show the documents of
   * the selected one again (when the Documents panel is open). */
  async function loadCollections(prefer, relist) {
    const r = await api("/collections");
    state.defaultCollection = r.default;
    state.collections = new Map(r.collections.map((c) => [c.name, c]));
    const names = r.collections.map((c) => c.name);
    if (!names.includes(r.default)) names.unshift(r.default);
    const want = [prefer, state.collection, r.default].find((n) => n && names.includes(n)) || names[0];
    const sel = $("collection");
    sel.replaceChildren(...names.map((n) => {
      const c = state.collections.get(n);
      return el("option", { value: n, text: c ? n + " (" + c.documents + ")" : n + " (empty)" });
    }));
    sel.value = want;
    selectCollection(want, relist !== false);
  }

  function selectCollection(name, relist) {
    state.collection = name;
    store.set("collection", name);
    const c = state.collections.get(name);
    $("coll-info").textContent = c ? c.chunks + " chunks" : "no documents yet";
    $("docs-coll").textContent = name;
    if (relist !== false && !$("panel-docs").hidden) listDocuments(true);
  }

  function collectionExists() {
    return state.collections.has(state.collection);
  }

  /* ---- the document viewer ------------------------------------------------ */

  async function getDocument(coll, id) {
    const key = coll + "/" + id;
    if (!state.docs.has(key))
      state.docs.set(key, await api("/collections/" + encodeURIComponent(coll) + "/documents/" + id));
    return state.docs.get(key);
  }

  /* The document's text from its chunks: they overlap, and what lies
   * between two of them is whitespace (chunk.h), given back as line
   * breaks so the offsets stay right. */
  function documentText(chunks) {
    const parts = [];
    let pos = 0;
    for (const c of [...chunks].sort((a, b) => a.char_start - b.char_start)) {
      const cps = Array.from(c.text);
      if (c.char_start > pos) {
        const gap = c.char_start - pos;
        parts.push(gap <= 2 ? "\n".repeat(gap) : "\n\n" + " ".repeat(gap - 2));
        pos = c.char_start;
      }
      const skip = pos - c.char_start;
      if (skip < cps.length) {
        parts.push(cps.slice(skip).join(""));
        pos = c.char_start + cps.length;
      }
    }
    return Array.from(parts.join(""));
  }

  async function openDocument(coll, docId, start, end, opener) {
    state.opener = opener || document.activeElement;
    const viewer = $("viewer");
    viewer.hidden = false;
    document.querySelector(".layout").classList.add("with-viewer");
    $("viewer-title").textContent = "Loading…";
    $("viewer-meta").textContent = "";
    $("viewer-text").replaceChildren();
    let doc;
    try { doc = await getDocument(coll, docId); }
    catch (e) { $("viewer-title").textContent = "Could not open the document"; $("viewer-meta").textContent = explain(e); return; }
    const text = documentText(doc.chunks);
    const hit = el("mark", { class: "hit", id: "viewer-hit", tabindex: "-1" }, text.slice(start, end).join(""));
    $("viewer-title").textContent = doc.title || doc.source || "Document " + doc.document_id;
    const chunk = doc.chunks.find((c) => c.char_start === start);
    $("viewer-meta").textContent = [doc.source, chunk && chunk.heading,
      end > start && "passage of characters " + start + "–" + end].filter(Boolean).join(" · ");
    $("viewer-text").replaceChildren(text.slice(0, start).join(""), hit, text.slice(end).join(""));
    hit.scrollIntoView({ block: "center" });
    hit.focus({ preventScroll: true });
  }

  function closeDocument() {
    $("viewer").hidden = true;
    document.querySelector(".layout").classList.remove("with-viewer");
    if (state.opener && document.contains(state.opener)) state.opener.focus();
  }

  /* ---- search --------------------------------------------------------------- */

  async function search(ev) {
    ev.preventDefault();
    const query = $("q").value.trim();
    if (!query) return;
    const msg = $("search-msg");
    if (!collectionExists()) {
      msg.textContent = "The collection " + state.collection + " has no documents yet: upload some under Documents.";
      $("results").replaceChildren();
      return;
    }
    if (!state.loaded) msg.textContent = "Waiting for the model to load…";
    await modelReady();
    msg.textContent = "Searching…";
    try {
      const coll = state.collection;
      const r = await api("/search", { method: "POST", json: { query, collection: coll, k: 10 } });
      const words = queryWords(query);
      msg.textContent = r.count + (r.count === 1 ? " result" : " results") + " in " + Math.round(r.took_ms) + " ms";
      $("results").replaceChildren(...r.results.map((res) => {
        const title = res.title || res.source || "Document " + res.document_id;
        const open = el("button", { type: "button", class: "result-open",
          onclick: (e) => openDocument(coll, res.document_id, res.char_start, res.char_end, e.currentTarget) }, title);
        return el("li", { class: "result" },
          el("div", { class: "result-head" }, el("h3", { class: "result-title" }, open),
            el("span", { class: "score", title: res.similarity !== undefined ? "cosine similarity" : "fused score" },
              "score " + (res.similarity !== undefined ? res.similarity : res.score).toFixed(3))),
          el("p", { class: "path" }, docPath(res)),
          el("p", { class: "snippet" }, marked(snippet(res.text, words, 280), words)));
      }));
    } catch (e) {
      msg.textContent = explain(e);
    }
  }

  /* ---- chat ------------------------------------------------------------------- */

  const DEGRADED = {
    llm_not_configured: "no language model is configured",
    breaker_open: "the language model failed several times and is paused",
    llm_timeout: "the language model did not answer in time",
    llm_unreachable: "the language model could not be reached",
    llm_error: "the language model answered with an error",
    llm_malformed: "the language model's answer could not be read",
    llm_busy: "the language model is busy",
    llm_empty_answer: "the language model gave an empty answer",
    unsupported_answer: "the language model's answer cited nothing its sources support",
  };

  function citeButton(n, turn, supported) {
    const src = (turn.sources || []).find((s) => s.n === n);
    if (!src) return "[" + n + "]";
    const title = src.title || src.source || "source " + n;
    const label = "Source " + n + ": " + title + (supported === false ? " (not supported by this source)" : "");
    return el("button", { type: "button", class: "cite" + (supported === false ? " unsupported" : ""),
      "aria-label": label, title: label,
      onclick: (e) => openDocument(turn.collection, src.document_id, src.char_start, src.char_end, e.currentTarget) },
      "[" + n + "]");
  }

  /* The answer's text with each [n] a link to its source.  With the final
   * answer's citations (character offsets, supported or not), those are
   * used; while streaming, any [n] of a known source. */
  function answerText(text, turn, citations) {
    const frag = document.createDocumentFragment();
    if (citations) {
      const cps = Array.from(text);
      let pos = 0;
      for (const c of citations) {
        frag.append(cps.slice(pos, c.start).join(""), citeButton(c.n, turn, c.supported));
        pos = c.end;
      }
      frag.append(cps.slice(pos).join(""));
      return frag;
    }
    const re = /\[(\d+)\]/g;
    let pos = 0, m;
    while ((m = re.exec(text))) {
      frag.append(text.slice(pos, m.index), citeButton(Number(m[1]), turn));
      pos = m.index + m[0].length;
    }
    frag.append(text.slice(pos));
    return frag;
  }

  function sourcesList(turn) {
    if (!turn.sources || !turn.sources.length) return null;
    return el("details", { class: "sources-box" }, el("summary", {}, "Sources (" + turn.sources.length + ")"),
      el("ol", { class: "sources" }, ...turn.sources.map((s) => el("li", { value: s.n },
        el("button", { type: "button",
          onclick: (e) => openDocument(turn.collection, s.document_id, s.char_start, s.char_end, e.currentTarget) },
        [s.title || s.source, s.heading].filter(Boolean).join(" › ")),
        " ", el("span", { class: "score" }, s.score.toFixed(3))))));
  }

  function notesOf(done) {
    const notes = [];
    const g = done.guardrails || {};
    if (!done.covered)
      notes.push(["warn", "The documents do not cover this question; the closest passages are listed as sources."]);
    if (done.degraded)
      notes.push(["warn", "Degraded answer: " + (DEGRADED[done.degraded_reason] || done.degraded_reason || "the language model was not used") +
        ", so this answer is made of passages from the documents."]);
    if (done.answer_kind === "blocked")
      notes.push(["bad", "The question was not sent to the language model."]);
    const removed = g.citations ? g.citations.removed : 0;
    if (removed)
      notes.push(["warn", removed + (removed === 1 ? " citation of a source that does not exist was" : " citations of sources that do not exist were") + " removed."]);
    const unsupported = g.citations ? g.citations.unsupported : 0;
    if (unsupported)
      notes.push(["warn", unsupported + (unsupported === 1 ? " citation is" : " citations are") + " not supported by its source (marked ?)."]);
    return notes.map(([cls, text]) => el("p", { class: "note " + cls }, text));
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const t = el("textarea", { class: "sr-only", "aria-hidden": "true" });
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }

  async function rate(turn, rating, buttons, msg) {
    try {
      await api("/feedback", { method: "POST", json: { answer_id: turn.done.id, rating,
        query: turn.question, answer: turn.done.answer, collection: turn.collection } });
      turn.rating = rating;
      buttons.up.setAttribute("aria-pressed", String(rating === "up"));
      buttons.down.setAttribute("aria-pressed", String(rating === "down"));
      msg.textContent = "Thanks: feedback saved.";
      saveChat();
    } catch (e) {
      msg.textContent = "Feedback not saved: " + explain(e);
    }
  }

  function toolsOf(turn) {
    const msg = el("span", { class: "muted", role: "status" });
    const copy = el("button", { type: "button", class: "secondary", onclick: async () => {
      try { await copyText(turn.done.answer); msg.textContent = "Copied."; }
      catch (e) { msg.textContent = "Could not copy: " + e.message; }
    } }, "Copy");
    const buttons = {};
    buttons.up = el("button", { type: "button", class: "secondary", "aria-pressed": String(turn.rating === "up"),
      onclick: () => rate(turn, "up", buttons, msg) }, "Helpful");
    buttons.down = el("button", { type: "button", class: "secondary", "aria-pressed": String(turn.rating === "down"),
      onclick: () => rate(turn, "down", buttons, msg) }, "Not helpful");
    return el("div", { class: "answer-tools" }, copy, buttons.up, buttons.down, msg);
  }

  /* The DOM of one turn; returns what the stream updates. */
  function turnView(turn) {
    const text = el("p", { class: "answer-text" });
    const box = el("div", { class: "answer", "aria-busy": "true" }, text);
    const node = el("article", { class: "turn", "aria-label": "Question and answer" },
      el("p", { class: "q" }, turn.question), box);
    $("conversation").append(node);
    $("chat-empty").hidden = true;
    return {
      status(t) { text.textContent = t; },
      stream(t) { box.classList.add("streaming"); text.replaceChildren(answerText(t, turn, null)); },
      finish(done) {
        box.classList.remove("streaming");
        box.removeAttribute("aria-busy");
        text.replaceChildren(answerText(done.answer, turn, done.citations));
        box.append(...notesOf(done));
        const s = sourcesList(turn);
        if (s) box.append(s);
        box.append(toolsOf(turn));
      },
      fail(msg) {
        box.classList.remove("streaming");
        box.removeAttribute("aria-busy");
        text.replaceChildren();
        box.append(el("p", { class: "note bad" }, "No answer: " + msg));
      },
    };
  }

  /* Server-Sent Events from a fetch body: calls on(event, data). */
  async function readEvents(body, on) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) on(event, JSON.parse(data.join("\n")));
      }
      if (done) return;
    }
  }

  function saveChat() {
    store.set("chat", state.turns.filter((t) => t.done).map((t) =>
      ({ question: t.question, collection: t.collection, sources: t.sources, done: t.done, rating: t.rating })));
  }

  async function ask(ev) {
    ev.preventDefault();
    const input = $("chat-input");
    const question = input.value.trim();
    if (!question || state.chatBusy) return;
    if (!collectionExists()) {
      $("chat-empty").hidden = false;
      $("chat-empty").textContent = "The collection " + state.collection + " has no documents yet: upload some under Documents.";
      return;
    }
    const history = [];
    for (const t of state.turns)
      if (t.done && t.collection === state.collection)
        history.push({ role: "user", content: t.question }, { role: "assistant", content: t.done.answer });
    const turn = { question, collection: state.collection, sources: [], done: null };
    state.turns.push(turn);
    input.value = "";
    const view = turnView(turn);
    state.chatBusy = true;
    $("chat-send").disabled = true;
    try {
      if (!state.loaded) view.status("Waiting for the model to load…");
      await modelReady();
      view.status("Searching the documents…");
      let r;
      try {
        r = await fetch("/chat", { method: "POST",
          headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
          body: JSON.stringify({ message: question, collection: turn.collection, history, stream: true }) });
      } catch (e) { throw new ApiError(0, "the server did not answer", "network"); }
      if (!r.ok) throw await errorOf(r);
      let text = "";
      await readEvents(r.body, (event, data) => {
        if (event === "sources") {
          turn.sources = data.sources;
          view.status("Writing the answer…");
        } else if (event === "delta") {
          text += data.text;
          view.stream(text);
        } else if (event === "replace") {
          text = data.text;
          view.stream(text);
        } else if (event === "done") {
          turn.done = data;
          turn.sources = data.sources;
          view.finish(data);
        }
      });
      if (!turn.done) throw new ApiError(0, "the answer stopped before its end", "stream");
      saveChat();
    } catch (e) {
      view.fail(explain(e));
    } finally {
      state.chatBusy = false;
      $("chat-send").disabled = false;
    }
  }

  function newChat() {
    state.turns = [];
    saveChat();
    $("conversation").replaceChildren();
    $("chat-empty").hidden = false;
    $("chat-input").focus();
  }

  function restoreChat() {
    for (const t of store.get("chat", [])) {
      if (!t || !t.done) continue;
      state.turns.push(t);
      turnView(t).finish(t.done);
    }
  }

  /* ---- documents ------------------------------------------------------------- */

  function uploadTarget() {
    const name = $("new-coll").value.trim();
    return name || state.collection;
  }

  function describeFile(f) {
    if (f.error) return [false, f.error.message];
    const counts = {};
    for (const d of f.documents) counts[d.status] = (counts[d.status] || 0) + 1;
    const what = Object.entries(counts).map(([k, v]) => v + " " + k).join(", ");
    return [true, (what || "no documents") + ", " + f.chunks + " chunks"];
  }

  function uploadOne(file, coll) {
    return new Promise((resolve) => {
      const bar = el("progress", { max: "100", value: "0", "aria-label": "Uploading " + file.name });
      const status = el("span", {}, "uploading…");
      $("uploads").append(el("li", {}, bar, el("strong", {}, file.name), " → " + coll + ": ", status));
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/collections/" + encodeURIComponent(coll) + "/files");
      if (state.key) xhr.setRequestHeader("Authorization", "Bearer " + state.key);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
      xhr.upload.onload = () => { bar.value = 100; status.textContent = "indexing…"; };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 200 && body) {
          const [ok, text] = describeFile(body.files[0]);
          status.textContent = text;
          status.className = ok ? "ok" : "bad";
        } else {
          const m = body && body.error ? body.error.message : "HTTP " + xhr.status;
          status.textContent = xhr.status === 401 || xhr.status === 403 ? m + " (enter the API key above)" : m;
          status.className = "bad";
        }
        resolve();
      };
      xhr.onerror = () => { status.textContent = "the server did not answer"; status.className = "bad"; resolve(); };
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  async function upload(files) {
    const coll = uploadTarget();
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(coll)) {
      $("docs-msg").textContent = "A collection name is 1 to 128 letters, digits, '.', '_' or '-'.";
      return;
    }
    await modelReady();
    for (const f of files) await uploadOne(f, coll);   // one at a time: the body cap is per request
    state.docs.clear();
    $("new-coll").value = "";
    await loadCollections(coll);   // lists the documents again
    refreshStatus();
  }

  async function listDocuments(reset) {
    const rows = $("doc-rows");
    const msg = $("docs-msg");
    if (reset) { rows.replaceChildren(); state.docsShown = 0; }
    $("docs-more").hidden = true;
    const coll = state.collection;
    const generation = ++state.docsGeneration;   // a newer listing wins
    if (!collectionExists()) { msg.textContent = "No documents yet."; return; }
    try {
      const r = await api("/collections/" + encodeURIComponent(coll) + "/documents?limit=50&offset=" + state.docsShown);
      if (generation !== state.docsGeneration) return;
      state.docsShown += r.documents.length;
      msg.textContent = r.total + (r.total === 1 ? " document" : " documents");
      rows.append(...r.documents.map((d) => documentRow(coll, d)));
      $("docs-more").hidden = state.docsShown >= r.total;
    } catch (e) {
      msg.textContent = explain(e);
    }
  }

  function documentRow(coll, d) {
    const title = d.title || d.source || "Document " + d.document_id;
    let armed = null;
    const del = el("button", { type: "button", class: "secondary", "aria-label": "Delete " + title });
    del.textContent = "Delete";
    const row = el("tr", {},
      el("td", {}, el("button", { type: "button", class: "result-open",
        onclick: (e) => openDocument(coll, d.document_id, 0, 0, e.currentTarget) }, title)),
      el("td", {}, d.source || d.id || ""),
      el("td", {}, String(d.chunks)),
      el("td", {}, del));
    del.addEventListener("click", async () => {
      if (!armed) {   /* a second click confirms */
        del.textContent = "Confirm delete";
        armed = setTimeout(() => { armed = null; del.textContent = "Delete"; }, 5000);
        return;
      }
      clearTimeout(armed);
      del.disabled = true;
      try {
        await api("/collections/" + encodeURIComponent(coll) + "/documents/" + d.document_id, { method: "DELETE" });
        row.remove();
        state.docs.delete(coll + "/" + d.document_id);
        await loadCollections(coll, false);
        refreshStatus();
        const left = state.collections.get(coll);
        $("docs-msg").textContent = "Deleted " + title + "; " + (left ? left.documents : 0) + " documents left.";
      } catch (e) {
        del.disabled = false;
        del.textContent = "Delete";
        armed = null;
        $("docs-msg").textContent = explain(e);
      }
    });
    return row;
  }

  /* ---- tabs ----------------------------------------------------------------- */

  const TABS = ["search", "chat", "docs"];

  function showTab(name, focus) {
    for (const t of TABS) {
      const tab = $("tab-" + t);
      const on = t === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      $("panel-" + t).hidden = !on;
      if (on && focus) tab.focus();
    }
    store.set("tab", name);
    if (name === "docs") listDocuments(true);
  }

  function tabKeys(ev) {
    const i = TABS.indexOf(ev.currentTarget.id.slice(4));
    const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    showTab(TABS[(moves[ev.key] + TABS.length) % TABS.length], true);
  }

  /* ---- start ------------------------------------------------------------------ */

  function start() {
    for (const t of TABS) {
      $("tab-" + t).addEventListener("click", () => showTab(t, false));
      $("tab-" + t).addEventListener("keydown", tabKeys);
    }
    $("collection").addEventListener("change", (e) => selectCollection(e.target.value, true));
    $("search-form").addEventListener("submit", search);
    $("chat-form").addEventListener("submit", ask);
    $("chat-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
    });
    $("new-chat").addEventListener("click", newChat);
    $("viewer-close").addEventListener("click", closeDocument);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("viewer").hidden) closeDocument(); });
    $("api-key").value = state.key;
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.key = $("api-key").value.trim();
      store.set("key", state.key);
      $("key-msg").textContent = state.key ? "The key is used for this tab's requests." : "No key: uploads work only on a server without one.";
      loadCollections().catch(showError);
    });
    $("choose-files").addEventListener("click", () => $("file-input").click());
    $("file-input").addEventListener("change", (e) => { upload([...e.target.files]); e.target.value = ""; });
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) upload([...e.dataTransfer.files]);
    });
    // a file dropped beside the zone must not replace the page
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    $("docs-more").addEventListener("click", () => listDocuments(false));

    restoreChat();
    showTab(TABS.includes(store.get("tab")) ? store.get("tab") : "search", false);
    refreshStatus();
    loadCollections().catch(showError);
  }

  start();
})();
