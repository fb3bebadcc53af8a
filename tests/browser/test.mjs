// test.mjs - browser tests of lode's web page (run by tests/browser.sh).
//
// Playwright (playwright-core, no browser download) drives Debian's
// chromium, headless with a fresh profile, against the real `lode serve`
// on free ports: a database indexed from data/sample, and the test LLM
// server (tests/llm_server.py) for chat.  A second server whose model
// loads slowly shows the page waiting for it.  Every wait is for a
// condition (a locator, a function in the page, a server's answer), never
// a fixed time.  axe-core runs in the page; a serious or critical
// violation fails.  Console errors and uncaught exceptions of any page
// fail the run.  Screenshots go to tests/browser/screenshots/
// (git-ignored).  Prints "N passed, N failed".
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const LODE = process.env.LODE || path.join(ROOT, "lode");
const PY = process.env.PY || "python3";
const MODEL = path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf");
const SHOTS = path.join(HERE, "screenshots");
const SLOW = LODE.includes("-san");      // sanitizer builds are slower
const WAIT = SLOW ? 60000 : 20000;
const KEY = "browser-test-key";
const AXE = fs.readFileSync(path.join(HERE, "node_modules", "axe-core", "axe.min.js"), "utf8");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lode-browser-"));
const children = [];
let passed = 0, failed = 0;
const consoleErrors = [];

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// ---- processes ----------------------------------------------------------

// Start a program and resolve with the first match of `re` in its output.
function start(cmd, args, env, re, stream) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(p);
    let out = "";
    const timer = setTimeout(() => reject(new Error(cmd + " did not start: " + out)), WAIT);
    const onData = (d) => {
      out += d;
      const m = out.match(re);
      if (m) { clearTimeout(timer); resolve({ proc: p, match: m, output: () => out }); }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("exit", (code) => { clearTimeout(timer); reject(new Error(cmd + " exited " + code + ": " + out)); });
    void stream;
  });
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(LODE_|LLM_|OPENROUTER_)/.test(k) && !["PORT", "HOST", "MAX_TOKENS", "GUARDRAILS_LEVEL"].includes(k))
      env[k] = v;
  return Object.assign(env, extra);
}

async function startLode(db, args, env) {
  const s = await start(LODE, ["serve", "--host", "127.0.0.1", "--port", "0", "--db", db, "-m", MODEL,
    "-t", "2", ...args], cleanEnv(env), /listening on http:\/\/\S+:(\d+)/);
  s.url = "http://127.0.0.1:" + s.match[1];
  return s;
}

// Poll the server until `ok(response)` (a deadline, not a sleep).
async function until(url, ok, what) {
  const end = Date.now() + WAIT;
  let last = "";
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (await ok(r)) return;
      last = r.status;
    } catch (e) { last = e.message; }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error("timed out waiting for " + what + " (" + last + ")");
}

// ---- the runner ---------------------------------------------------------

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log("ok   " + name + " (" + (Date.now() - t0) + " ms)");
  } catch (e) {
    failed++;
    console.log("FAIL " + name + ": " + (e.stack || e));
  }
}

function watch(page, label) {
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(label + ": " + m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(label + ": uncaught " + e.message));
  page.setDefaultTimeout(WAIT);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function axe(page, label) {
  // evaluated through the DevTools protocol, which the page's CSP allows
  const r = await page.evaluate(AXE + "\n;axe.run(document, {resultTypes: ['violations']})");
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, label + ": axe found " + bad.map((v) => v.id + " (" + v.impact + "): " +
    v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")).join("; "));
  return r.violations.length;
}

async function search(page, query) {
  await page.locator("#tab-search").click();
  await page.locator("#q").fill(query);
  await page.locator("#search-form button[type=submit]").click();
  await page.locator("#search-msg", { hasText: /results? in/ }).waitFor();
}

async function ask(page, question) {
  const n = await page.locator(".turn").count();
  await page.locator("#chat-input").fill(question);
  await page.locator("#chat-input").press("Enter");
  const turn = page.locator(".turn").nth(n);
  await turn.locator(".answer:not([aria-busy])").waitFor();
  return turn;
}

// ---- the run ------------------------------------------------------------

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const db = path.join(tmp, "sample.db");
  execFileSync(LODE, ["ingest", "--db", db, "-m", MODEL, "data/sample"], { cwd: ROOT, stdio: "pipe" });
  fs.copyFileSync(db, path.join(tmp, "slow.db"));

  const llm = await start(PY, [path.join(ROOT, "tests", "llm_server.py"), "--port", "0", "--delay-ms", "15"],
    process.env, /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
  const llmUrl = llm.match[1];
  const lode = await startLode(db, [], { LLM_BASE_URL: llmUrl, LLM_MODEL: "test-llm", LLM_RETRIES: "0",
    LODE_API_KEY: KEY });
  const slow = await startLode(path.join(tmp, "slow.db"), ["--debug-load-delay-ms", SLOW ? "8000" : "3000"], {});
  await until(lode.url + "/health", (r) => r.status === 200, "the server to load its model");

  const ctx = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  try {
    await run(ctx, lode, slow, llm, llmUrl);
  } finally {
    await ctx.close();
  }
}

async function run(ctx, lode, slow, llm, llmUrl) {
  const llmControl = llmUrl.replace(/\/v1$/, "");
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, "desktop");

  await test("the page waits for a model that is still loading", async () => {
    const p = await ctx.newPage();
    watch(p, "loading");
    await p.goto(slow.url + "/");
    await p.locator("#loading-note", { hasText: "still loading" }).waitFor();
    await p.locator("#st-model", { hasText: "loading" }).waitFor();
    await p.locator("#q").fill("how many vacation days do I get");
    await p.locator("#search-form button[type=submit]").click();
    await p.locator("#search-msg", { hasText: "Waiting for the model" }).waitFor();
    await shot(p, "loading");
    const first = p.locator(".result").first();
    await first.waitFor();
    check(/Annual Leave/.test(await first.locator(".result-open").textContent()), "loading: wrong first result");
    await p.locator("#loading-note").waitFor({ state: "hidden" });
    await p.locator("#st-model", { hasText: "loaded" }).waitFor();
    await p.close();
  });

  await test("status strip: model, memory against the limit, chunks, LLM and breaker", async () => {
    await page.goto(lode.url + "/");
    await page.locator("#st-model", { hasText: "all-MiniLM-L6-v2-q8_0.gguf (q8_0, loaded)" }).waitFor();
    await page.locator("#st-memory", { hasText: /^\d+ MB of \d+ MB/ }).waitFor();
    const h = await (await fetch(lode.url + "/health")).json();
    await page.locator("#st-chunks", { hasText: h.store.chunks + " in " + h.store.documents + " documents" }).waitFor();
    await page.locator("#st-llm", { hasText: "test-llm, breaker closed" }).waitFor();
    check((await page.locator("#collection").inputValue()) === "default", "default collection not selected");
  });

  let firstResult;
  await test("search: the expected document first, the query's words marked, the score", async () => {
    await search(page, "how many vacation days do I get");
    firstResult = page.locator(".result").first();
    check((await firstResult.locator(".result-open").textContent()) === "Annual Leave (Vacation) Policy",
      "first result: " + await firstResult.locator(".result-open").textContent());
    check(/annual-leave\.md/.test(await firstResult.locator(".path").textContent()), "no source path");
    check(/score 0\.\d{3}/.test(await firstResult.locator(".score").textContent()), "no score");
    const marks = await firstResult.locator(".snippet mark").allTextContents();
    check(marks.length > 0, "no marked words");
    check(marks.every((m) => /^(vacation|days?)/i.test(m)), "marked words not from the query: " + marks);
    await shot(page, "search");
  });

  await test("a result opens its document with the passage highlighted and in view", async () => {
    const r = await (await fetch(lode.url + "/search", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query: "how many vacation days do I get", k: 1 }) })).json();
    await firstResult.locator(".result-open").click();
    const hit = page.locator("#viewer-hit");
    await hit.waitFor();
    check((await hit.textContent()) === r.results[0].text, "the highlighted text is not the chunk");
    check((await page.locator("#viewer-title").textContent()) === "Annual Leave (Vacation) Policy", "viewer title");
    const inView = await page.evaluate(() => {
      const h = document.getElementById("viewer-hit").getBoundingClientRect();
      const box = document.getElementById("viewer-text").getBoundingClientRect();
      return h.top >= box.top - 1 && h.top < box.bottom && h.top < window.innerHeight;
    });
    check(inView, "the passage is not scrolled into view");
    check(await page.evaluate(() => document.activeElement.id === "viewer-hit"), "focus not on the passage");
    await shot(page, "document");
    await page.keyboard.press("Escape");
    await page.locator("#viewer").waitFor({ state: "hidden" });
    check(await firstResult.locator(".result-open").evaluate((b) => b === document.activeElement),
      "focus did not return to the result");
  });

  let chatRequests = [];
  page.on("request", (req) => { if (req.url().endsWith("/chat")) chatRequests.push(req.postDataJSON()); });

  await test("chat: a streamed answer with citations that open their passages", async () => {
    await page.locator("#tab-chat").click();
    // count the answer's text updates, to see it arrive in pieces
    await page.evaluate(() => {
      window.__updates = 0;
      new MutationObserver(() => { window.__updates++; }).observe(document.getElementById("conversation"),
        { childList: true, subtree: true, characterData: true });
    });
    const turn = await ask(page, "How many vacation days do I get?");
    const updates = await page.evaluate(() => window.__updates);
    check(updates > 5, "the answer did not stream (" + updates + " updates)");
    const text = await turn.locator(".answer-text").textContent();
    check(/\[\d\]/.test(text), "no citation in " + text);
    const cite = turn.locator(".answer-text .cite").first();
    check(!(await cite.getAttribute("class")).includes("unsupported"), "a good citation marked unsupported");
    const label = await cite.getAttribute("aria-label");
    check(/^Source \d: /.test(label), "citation label: " + label);
    await cite.click();
    await page.locator("#viewer-hit").waitFor();
    const hit = await page.locator("#viewer-hit").textContent();
    const sentence = text.replace(/\s*\[\d\]\s*$/, "").trim();
    check(hit.replace(/\s+/g, " ").includes(sentence.replace(/\s+/g, " ")),
      "the cited passage does not hold the answer: " + sentence);
    check((await turn.locator(".note").count()) === 0, "notes on a good answer");
    await turn.locator("summary", { hasText: "Sources (5)" }).waitFor();
    await shot(page, "chat");
    await page.locator("#viewer-close").click();
  });

  await test("chat: a follow-up question keeps the conversation", async () => {
    chatRequests = [];
    const turn = await ask(page, "And can I carry unused days over?");
    check(chatRequests.length === 1, "requests: " + chatRequests.length);
    const h = chatRequests[0].history;
    check(h.length === 2 && h[0].role === "user" && h[0].content === "How many vacation days do I get?" &&
      h[1].role === "assistant" && /\[\d\]/.test(h[1].content), "history: " + JSON.stringify(h));
    check(chatRequests[0].stream === true, "not streamed");
    check(/carry|unused|over/i.test(await turn.locator(".answer-text").textContent()), "follow-up answer");
    check((await page.locator(".turn").count()) === 2, "two turns");
    // the rewrite saw the first question
    const seen = await (await fetch(llmControl + "/_requests")).json();
    check(seen.some((r) => JSON.stringify(r.body).includes("How many vacation days")), "the LLM lacked the history");
  });

  await test("chat: thumbs up is stored by the server; copy copies the answer", async () => {
    const turn = page.locator(".turn").first();
    await turn.getByRole("button", { name: "Helpful", exact: true }).click();
    await turn.locator("[role=status]", { hasText: "feedback saved" }).waitFor();
    check((await turn.getByRole("button", { name: "Helpful", exact: true }).getAttribute("aria-pressed")) === "true",
      "not pressed");
    const fb = await (await fetch(lode.url + "/feedback", { headers: { Authorization: "Bearer " + KEY } })).json();
    check(fb.count === 1 && fb.feedback[0].rating === "up" && fb.feedback[0].query === "How many vacation days do I get?" &&
      /^chat-/.test(fb.feedback[0].answer_id), "stored: " + JSON.stringify(fb));
    await turn.getByRole("button", { name: "Not helpful" }).click();
    await page.waitForFunction(() => document.querySelector(".turn [aria-pressed=true]").textContent === "Not helpful");
    const fb2 = await (await fetch(lode.url + "/feedback", { headers: { Authorization: "Bearer " + KEY } })).json();
    check(fb2.count === 1 && fb2.feedback[0].rating === "down", "changed rating: " + JSON.stringify(fb2));
    await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: lode.url });
    await turn.getByRole("button", { name: "Copy" }).click();
    await turn.locator("[role=status]", { hasText: "Copied." }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    check(copied === fb.feedback[0].answer, "copied: " + copied);
  });

  await test("chat: removed and unsupported citations are shown as such", async () => {
    await fetch(llmControl + "/_control", { method: "POST", body: JSON.stringify({ queue: [
      { mode: "answer" },   // the rewrite of the follow-up
      { mode: "text", text: "The moon is made of green cheese [1]. Staff also get 400 days [9]." }] }) });
    const turn = await ask(page, "Is the moon made of cheese?");
    await turn.locator(".note", { hasText: "1 citation of a source that does not exist was removed" }).waitFor();
    await turn.locator(".note", { hasText: "not supported by its source" }).waitFor();
    const cite = turn.locator(".cite.unsupported");
    check((await cite.count()) === 1, "unsupported citations: " + await cite.count());
    check(/not supported/.test(await cite.getAttribute("aria-label")), "label");
    check(!(await turn.locator(".answer-text").textContent()).includes("[9]"), "[9] still shown");
    await shot(page, "chat-citations");
  });

  await test("reload keeps the conversation; new chat clears it", async () => {
    await page.reload();
    await page.locator(".turn").nth(2).waitFor();
    check((await page.locator(".turn").count()) === 3, "turns after reload");
    await page.locator("#tab-chat").click();
    await page.locator("#new-chat").click();
    check((await page.locator(".turn").count()) === 0, "new chat left turns");
    check(await page.evaluate(() => document.activeElement.id === "chat-input"), "focus after new chat");
  });

  await test("chat with the LLM down: the degraded note, an answer from the documents", async () => {
    llm.proc.kill("SIGTERM");
    await new Promise((res) => llm.proc.once("exit", res));
    chatRequests = [];
    const turn = await ask(page, "How many vacation days do I get?");
    check(chatRequests[0].history.length === 0, "new chat sent history");
    await turn.locator(".note", { hasText: "Degraded answer: the language model could not be reached" }).waitFor();
    check((await turn.locator(".answer-text .cite").count()) > 0, "the extractive answer has no citations");
    await shot(page, "chat-degraded");
  });

  const moon = "# Lunar greenhouse rota\n\nThe lunar greenhouse is watered by the night shift every Tuesday " +
    "and Friday.\n\n## Seeds\n\nSeed trays are kept in the cold store next to the airlock.\n";

  await test("documents: upload by drag and drop with the key, then find it by search", async () => {
    await page.locator("#tab-docs").click();
    await page.locator("#docs-msg", { hasText: /\d+ documents/ }).waitFor();
    await page.locator("#api-key").fill(KEY);
    await page.locator("#key-form button").click();
    await page.locator("#key-msg", { hasText: "key is used" }).waitFor();
    await page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], "moon-base.md", { type: "text/markdown" }));
      const zone = document.getElementById("drop");
      zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, moon);
    const item = page.locator("#uploads li", { hasText: "moon-base.md" });
    await item.locator(".ok", { hasText: "1 added, 2 chunks" }).waitFor();
    check((await item.locator("progress").getAttribute("value")) === "100" ||
      (await item.locator("progress").evaluate((p) => p.value)) === 100, "progress not complete");
    await page.locator("#doc-rows tr", { hasText: "Lunar greenhouse rota" }).waitFor();
    await page.locator("#st-chunks", { hasText: "in 22 documents" }).waitFor();   // the strip is refreshed
    await shot(page, "documents");
    await search(page, "when is the lunar greenhouse watered");
    check((await page.locator(".result .result-open").first().textContent()) === "Lunar greenhouse rota",
      "the upload is not found first");
  });

  await test("documents: a file chosen into a new collection; list and delete", async () => {
    await page.locator("#tab-docs").click();
    await page.locator("#new-coll").fill("moon");
    const html = path.join(tmp, "rover.html");
    fs.writeFileSync(html, "<html><head><title>Rover manual</title></head><body><h1>Rover manual</h1>" +
      "<p>The rover charges at the north dock overnight.</p></body></html>");
    await page.locator("#file-input").setInputFiles(html);
    await page.locator("#uploads li", { hasText: "rover.html → moon" }).locator(".ok").waitFor();
    await page.waitForFunction(() => document.getElementById("collection").value === "moon");
    const row = page.locator("#doc-rows tr", { hasText: "Rover manual" });
    await row.waitFor();
    await row.getByRole("button", { name: "Delete Rover manual" }).click();
    await row.getByRole("button", { name: "Delete Rover manual" }, { hasText: "Confirm" }).click();
    await page.locator("#docs-msg", { hasText: "Deleted Rover manual; 0 documents left." }).waitFor();
    await row.waitFor({ state: "detached" });
    const list = await (await fetch(lode.url + "/collections/moon/documents")).json();
    check(list.total === 0, "not deleted: " + JSON.stringify(list));
    await page.locator("#collection").selectOption("default");
  });

  await test("keyboard: tabs move with the arrow keys", async () => {
    await page.locator("#tab-search").click();
    await page.locator("#tab-search").press("ArrowRight");
    check(await page.evaluate(() => document.activeElement.id === "tab-chat"), "focus on Chat");
    check(!(await page.locator("#panel-chat").isHidden()), "chat panel hidden");
    await page.keyboard.press("End");
    check((await page.locator("#tab-docs").getAttribute("aria-selected")) === "true", "End");
    await page.keyboard.press("Home");
    check((await page.locator("#tab-search").getAttribute("aria-selected")) === "true", "Home");
  });

  await test("axe-core: no serious or critical violation, light and dark", async () => {
    await search(page, "how many vacation days do I get");
    await page.locator(".result .result-open").first().click();
    await page.locator("#viewer-hit").waitFor();
    await axe(page, "search and document");
    await page.locator("#viewer-close").click();
    await page.locator("#tab-chat").click();
    await fetch(lode.url + "/health");
    await axe(page, "chat");
    await page.locator("#tab-docs").click();
    await page.locator("#doc-rows tr").first().waitFor();
    await axe(page, "documents");
    await page.emulateMedia({ colorScheme: "dark" });
    await axe(page, "documents, dark");
    await page.locator("#tab-search").click();
    await axe(page, "search, dark");
    await shot(page, "dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  await test("a phone's width (375 px): no sideways scrolling, the document over the page", async () => {
    const p = await ctx.newPage();
    watch(p, "phone");
    await p.setViewportSize({ width: 375, height: 740 });
    await p.goto(lode.url + "/");
    await search(p, "how many vacation days do I get");
    for (const tab of ["search", "chat", "docs"]) {
      await p.locator("#tab-" + tab).click();
      const w = await p.evaluate(() => document.documentElement.scrollWidth);
      check(w <= 375, tab + ": the page is " + w + " px wide");
    }
    await p.locator("#tab-search").click();
    await shot(p, "phone-search");
    await p.locator(".result .result-open").first().click();
    await p.locator("#viewer-hit").waitFor();
    const box = await p.locator("#viewer").boundingBox();
    check(box.x === 0 && box.width <= 375 && box.width >= 370, "viewer box " + JSON.stringify(box));
    check(await p.locator("#viewer-close").isVisible(), "no close button");
    await shot(p, "phone-document");
    await axe(p, "phone");
    await p.locator("#viewer-close").click();
    await p.locator("#viewer").waitFor({ state: "hidden" });
    await p.close();
  });

  await test("no console errors", async () => {
    check(consoleErrors.length === 0, consoleErrors.join("\n"));
  });
}

let code = 0;
try {
  await main();
} catch (e) {
  failed++;
  console.log("FAIL setup: " + (e.stack || e));
}
const running = (c) => c.exitCode === null && c.signalCode === null;
const exits = children.map((c) => running(c) ? new Promise((res) => c.once("exit", res)) : null);
for (const c of children) if (running(c)) c.kill("SIGTERM");
await Promise.all(exits);
for (const c of children)
  if (c.spawnfile === LODE && c.exitCode !== 0) { failed++; console.log("FAIL lode serve exited " + c.exitCode + " " + c.signalCode); }
fs.rmSync(tmp, { recursive: true, force: true });
console.log("tests/browser/test.mjs: " + passed + " passed, " + failed + " failed");
if (failed) code = 1;
process.exit(code);
