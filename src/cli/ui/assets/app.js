// Gatehouse review desk. Plain JavaScript, no dependencies, no build step.
// Every string from the cluster is hostile: text goes into the page with
// textContent / createTextNode only, never innerHTML.
"use strict";

// The secret comes in the address's fragment (never sent to any server) and
// stays in this tab's sessionStorage; every API call presents it in a header.
(function takeSecret() {
  const h = location.hash.slice(1);
  if (/^[0-9a-f]{64}$/.test(h)) {
    sessionStorage.setItem("gatehouse-secret", h);
    history.replaceState(null, "", "#/queue");
  }
})();
const SECRET = sessionStorage.getItem("gatehouse-secret") || "";

const state = { me: null, view: null, rows: [], current: 0, selected: new Set(), filter: "", page: 0, report: null };
const PAGE = 100;

// ---- DOM helpers: text only ----
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (id) => document.getElementById(id);
function link(href, text) { return el("a", { href }, text); }
function route(...parts) { return "#/" + parts.map(encodeURIComponent).join("/"); }

function notice(text, kind) {
  const box = $("notice");
  box.replaceChildren(el("p", { class: kind || "" }, text));
}

// ---- API ----
async function api(path, body) {
  const opts = { headers: { "X-Gatehouse-Secret": SECRET }, cache: "no-store" };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (_) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || text || r.statusText);
  return data === null ? text : data;
}

// ---- time ----
function left(until) {
  const s = Math.floor((new Date(until) - Date.now()) / 1000);
  if (s <= 0) return "expired";
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  return `${m}m${String(sec).padStart(2, "0")}s`;
}
function ago(t) {
  if (!t) return "-";
  const s = Math.max(0, Math.floor((Date.now() - new Date(t)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
setInterval(() => {
  for (const e of document.querySelectorAll("[data-until]")) e.textContent = left(e.getAttribute("data-until"));
}, 1000);

// ---- asking for a comment ----
// Resolves {comment, to} or null if cancelled.
function ask(title, text, { commentRequired = false, reassign = false } = {}) {
  return new Promise((resolve) => {
    const d = $("ask");
    $("ask-title").textContent = title;
    $("ask-text").textContent = text;
    $("ask-error").textContent = "";
    $("ask-comment").value = "";
    $("ask-to").value = "";
    $("ask-comment-label").textContent = commentRequired ? "Comment (required)" : "Comment (optional)";
    $("ask-to").hidden = $("ask-to-label").hidden = !reassign;
    const done = (v) => { d.close(); cleanup(); resolve(v); };
    const ok = (ev) => {
      ev.preventDefault();
      const comment = $("ask-comment").value.trim();
      const to = $("ask-to").value.split(",").map((s) => s.trim()).filter(Boolean);
      if (commentRequired && !comment) { $("ask-error").textContent = "A comment is required here."; return; }
      if (reassign && !to.length) { $("ask-error").textContent = "Name whom to reassign to."; return; }
      done({ comment, to });
    };
    const cancel = () => done(null);
    const onClose = () => { cleanup(); resolve(null); };
    function cleanup() {
      $("ask-form").removeEventListener("submit", ok);
      $("ask-cancel").removeEventListener("click", cancel);
      d.removeEventListener("cancel", onClose);
    }
    $("ask-form").addEventListener("submit", ok);
    $("ask-cancel").addEventListener("click", cancel);
    d.addEventListener("cancel", onClose);
    d.showModal();
    (reassign ? $("ask-to") : $("ask-comment")).focus();
  });
}

// ---- actions ----
async function reviewRequest(r, decision) {
  const needs = decision !== "Approve";
  const a = await ask(`${decision} ${r.name}`, `${r.role} for ${r.subject} in ${r.namespace}, asked by ${r.requester.username}`,
    { commentRequired: false });
  if (!a) return;
  notice(`${decision}: waiting for the operator's verdict on ${r.name}…`);
  try {
    const out = await api("/api/review", { namespace: r.namespace, name: r.name, decision, comment: a.comment || null });
    const accepted = out.verdict && out.verdict.accepted;
    notice(out.line, accepted ? "good" : "bad");
  } catch (e) {
    notice(e.message, "bad");
  }
  void needs;
  refresh();
}

function outcomesLine(outs) {
  const ok = outs.filter((o) => o.verdict && o.verdict.accepted).length;
  const bad = outs.filter((o) => o.verdict && !o.verdict.accepted);
  const late = outs.filter((o) => !o.verdict).length;
  let line = `${ok} of ${outs.length} decisions accepted`;
  if (bad.length) line += `; not accepted: ${bad.map((o) => `${o.item} (${o.verdict.reason}${o.verdict.message ? ": " + o.verdict.message : ""})`).join(", ")}`;
  if (late) line += `; ${late} without a verdict yet`;
  return [line, bad.length || late ? "bad" : "good"];
}

async function decideItems(items, decision) {
  if (!items.length) { notice("Select items first (x, or the check boxes).", "bad"); return; }
  const key = decision === "Approve" ? "commentOnApprove" : "commentOnRevoke";
  const required = decision === "Reassign" || items.some((i) => i[key]);
  const what = items.length === 1 ? `${items[0].subject} in ${items[0].binding}` : `${items.length} items`;
  const a = await ask(`${decision} ${what}`, items.length === 1 ? `${items[0].role}; recommended ${items[0].recommendation}` : "",
    { commentRequired: required, reassign: decision === "Reassign" });
  if (!a) return;
  notice(`${decision}: recording ${items.length} decision(s)…`);
  try {
    const outs = await api("/api/certify", {
      items: items.map((i) => ({ namespace: i.namespace, name: i.name })),
      decision, comment: a.comment || null, reassignTo: a.to,
    });
    const [line, kind] = outcomesLine(outs);
    notice(line, kind);
  } catch (e) {
    notice(e.message, "bad");
  }
  state.selected.clear();
  refresh();
}

async function approveRecommended(view) {
  const mine = view.items.filter((i) => i.canDecide && i.recommendation === "Accept");
  if (!mine.length) { notice("No item recommended Accept waits for you in this run.", "bad"); return; }
  const required = mine.some((i) => i.commentOnApprove);
  const a = await ask(`Approve ${mine.length} recommended items`, `Every item of ${view.run} recommended Accept that waits for you.`,
    { commentRequired: required });
  if (!a) return;
  notice(`Approving ${mine.length} items…`);
  try {
    const outs = await api("/api/certify/recommended", { campaign: view.campaign, run: view.run, comment: a.comment || null });
    const [line, kind] = outcomesLine(outs);
    notice(line, kind);
  } catch (e) {
    notice(e.message, "bad");
  }
  refresh();
}

async function again(r, extend) {
  try {
    const out = await api("/api/request-again", { namespace: r.namespace, name: r.name, extend });
    notice(`${extend ? "Extension" : "Request"} ${out.name} filed: ${out.role} in ${out.namespace}.`, "good");
  } catch (e) {
    notice(e.message, "bad");
  }
  refresh();
}

async function download(campaign, run, format) {
  try {
    const r = await fetch(`/api/report/${encodeURIComponent(campaign)}/${encodeURIComponent(run)}?format=${format}`,
      { headers: { "X-Gatehouse-Secret": SECRET }, cache: "no-store" });
    const text = await r.text();
    if (!r.ok) {
      let why = text;
      try { why = JSON.parse(text).error || text; } catch (_) { /* the text as it is */ }
      throw new Error(why);
    }
    if (state.report) URL.revokeObjectURL(state.report.url);
    state.report = { campaign, run, file: `${run}.${format}`, sha: r.headers.get("x-report-sha256") || "",
      url: URL.createObjectURL(new Blob([text], { type: r.headers.get("content-type") || "text/plain" })) };
    $("report-sha").replaceChildren(...reportLine(campaign, run));
    $("report-save").focus();
  } catch (e) {
    notice(e.message, "bad");
  }
}

// The last report downloaded, while its run is shown: a live refresh redraws
// the page, and the digest the reviewer is checking stays.
function reportLine(campaign, run) {
  const r = state.report;
  if (!r || r.campaign !== campaign || r.run !== run) return [];
  return [el("a", { href: r.url, download: r.file, id: "report-save" }, `Save ${r.file}`),
    ` SHA-256: ${r.sha} (check: sha256sum ${r.file})`];
}

// ---- rows, selection, keyboard ----
function setRows(rows) {
  state.rows = rows;
  if (state.current >= rows.length) state.current = Math.max(0, rows.length - 1);
  applyFilter();
}
function paintCurrent() {
  state.rows.forEach((r, i) => r.tr.classList.toggle("current", i === state.current));
}
function move(d) {
  if (!state.rows.length) return;
  let i = state.current;
  for (let n = i + d; n >= 0 && n < state.rows.length; n += d) {
    if (!state.rows[n].tr.hidden) { i = n; break; }
  }
  state.current = i;
  paintCurrent();
  const r = state.rows[state.current];
  r.tr.scrollIntoView({ block: "nearest" });
  const f = r.tr.querySelector("a, input, button");
  if (f) f.focus();
}
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.tagName === "INPUT" && t.type !== "checkbox" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (document.querySelector("dialog[open]")) return;
  const row = state.rows[state.current];
  const k = ev.key;
  const keys = {
    "1": () => (location.hash = "#/queue"),
    "2": () => (location.hash = "#/mine"),
    "3": () => (location.hash = "#/runs"),
    "j": () => move(1), "ArrowDown": () => move(1),
    "k": () => move(-1), "ArrowUp": () => move(-1),
    "/": () => { const f = $("filter"); if (f) f.focus(); },
    "?": () => $("help").showModal(),
    "x": () => row && row.select && row.select(),
    "a": () => row && row.approve && row.approve(),
    "r": () => row && row.reject && row.reject(),
    "Enter": () => row && row.open && row.open(),
  };
  if (keys[k]) { ev.preventDefault(); keys[k](); }
});

// ---- pages ----

// The filter hides rows whose text does not contain it (on the page shown),
// without re-drawing: typing is never lost to a refresh.
function filterBar(extra) {
  const input = el("input", { id: "filter", type: "search", placeholder: "filter (/)", "aria-label": "Filter", value: state.filter });
  input.addEventListener("input", () => { state.filter = input.value; applyFilter(); });
  return el("div", { class: "bar" }, el("label", { for: "filter" }, "Filter"), input, extra || []);
}
function applyFilter() {
  const q = state.filter.trim().toLowerCase();
  for (const r of state.rows) r.tr.hidden = !!q && !r.tr.textContent.toLowerCase().includes(q);
  for (const t of document.querySelectorAll("[data-count-of]")) {
    const rows = document.querySelectorAll(`${t.getAttribute("data-count-of")}:not([hidden])`);
    t.textContent = `${t.getAttribute("data-title")} (${rows.length})`;
  }
  const first = state.rows.findIndex((r) => !r.tr.hidden);
  if (state.rows[state.current] && state.rows[state.current].tr.hidden && first >= 0) state.current = first;
  paintCurrent();
}

function riskTags(i) {
  return i.risk.length ? i.risk.map((t) => el("span", { class: "tag risk" }, t)) : el("span", { class: "muted" }, "-");
}

function requestTable(rows, { actions }) {
  const body = el("tbody");
  const out = [];
  for (const r of rows) {
    const tr = el("tr", { "data-request": `${r.namespace}/${r.name}` },
      el("td", { class: "name" }, link(route("request", r.namespace, r.name), r.name)),
      el("td", {}, r.requester.username),
      el("td", {}, r.role),
      el("td", {}, r.subject),
      el("td", {}, r.namespace),
      el("td", {}, r.reason || "-"),
      el("td", { class: `phase-${r.phase}` }, r.phase || "new"),
      el("td", {}, r.expiresAt && r.phase === "Active" ? el("span", { "data-until": r.expiresAt }, left(r.expiresAt)) : ago(r.createdAt)),
      el("td", {}, actions(r)));
    body.appendChild(tr);
    out.push({ tr, open: () => (location.hash = route("request", r.namespace, r.name)),
      approve: r.canReview ? () => reviewRequest(r, "Approve") : null,
      reject: r.canReview ? () => reviewRequest(r, "Reject") : null });
  }
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ["Request", "Requester", "Role", "For", "Namespace", "Reason", "Phase", "Age / left", ""].map((h) => el("th", { scope: "col" }, h)))), body);
  return [table, out];
}

function itemTable(items, { selectable, grouped }) {
  const body = el("tbody");
  const out = [];
  let lastGroup = null;
  for (const i of items) {
    if (grouped) {
      const g = grouped(i);
      if (g !== lastGroup) {
        body.appendChild(el("tr", { class: "group" }, el("th", { colspan: 10, scope: "colgroup" }, g)));
        lastGroup = g;
      }
    }
    const key = `${i.namespace}/${i.name}`;
    const box = el("input", { type: "checkbox", "aria-label": `select ${i.subject} ${i.binding}`, disabled: !i.canDecide,
      checked: state.selected.has(key) });
    box.addEventListener("change", () => { box.checked ? state.selected.add(key) : state.selected.delete(key); });
    const tr = el("tr", { "data-item": key },
      el("td", {}, selectable ? box : null),
      el("td", { class: "name" }, i.subject),
      el("td", {}, i.role),
      el("td", { class: "name" }, i.binding),
      el("td", {}, riskTags(i)),
      el("td", { class: `rec-${i.recommendation}` }, i.recommendation, i.reasons.length ? el("div", { class: "muted" }, i.reasons.join("; ")) : null),
      el("td", {}, i.level),
      el("td", {}, i.decision),
      el("td", {}, i.dueIn),
      el("td", {}, i.canDecide ? [
        el("button", { type: "button", onclick: () => decideItems([i], "Approve"), "aria-label": `approve ${i.subject} ${i.binding}` }, "Approve"), " ",
        el("button", { type: "button", class: "danger", onclick: () => decideItems([i], "Revoke"), "aria-label": `revoke ${i.subject} ${i.binding}` }, "Revoke"), " ",
        el("button", { type: "button", onclick: () => decideItems([i], "Reassign"), "aria-label": `reassign ${i.subject} ${i.binding}` }, "Reassign"),
      ] : null));
    body.appendChild(tr);
    out.push({ tr, item: i,
      select: () => { if (!i.canDecide) return; box.checked = !box.checked; box.dispatchEvent(new Event("change")); },
      approve: i.canDecide ? () => decideItems(chosen(items, i), "Approve") : null,
      reject: i.canDecide ? () => decideItems(chosen(items, i), "Revoke") : null,
      open: () => (location.hash = route("run", i.campaign, i.run)) });
  }
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ["", "Subject", "Role", "Binding", "Risk", "Recommendation", "Level", "Decision", "Due in", ""].map((h) => el("th", { scope: "col" }, h)))), body);
  return [table, out];
}

// The selected items, or the row's item when nothing is selected.
function chosen(items, row) {
  const sel = items.filter((i) => state.selected.has(`${i.namespace}/${i.name}`));
  return sel.length ? sel : [row];
}

function pager(total) {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  if (pages === 1) return null;
  return el("div", { class: "bar" },
    el("button", { type: "button", disabled: state.page === 0, onclick: () => { state.page--; render(false); } }, "Previous"),
    el("span", {}, `page ${state.page + 1} of ${pages} (${total} items)`),
    el("button", { type: "button", disabled: state.page >= pages - 1, onclick: () => { state.page++; render(false); } }, "Next"));
}

const pages = {
  async queue(main) {
    // The desk sends one page of items (filtered by recommendation) and how many there are.
    const data = await api(`/api/queue?page=${state.page}&rec=${encodeURIComponent(state.rec || "any")}`);
    state.page = data.page;
    const kind = el("select", { id: "kind", "aria-label": "Show" },
      ...[["all", "requests and items"], ["requests", "requests"], ["items", "items"]].map(([v, t]) =>
        el("option", { value: v, selected: state.kind === v }, t)));
    kind.addEventListener("change", () => { state.kind = kind.value; render(false); });
    const rec = el("select", { id: "rec", "aria-label": "Recommendation" },
      ...["any", "Accept", "Review", "Revoke"].map((v) => el("option", { value: v, selected: state.rec === v }, v === "any" ? "any recommendation" : v)));
    rec.addEventListener("change", () => { state.rec = rec.value; state.page = 0; render(false); });
    main.replaceChildren(el("h2", {}, "My queue"), filterBar([el("label", { for: "kind" }, "Show"), kind, rec]),
      data.notes.map((n) => el("p", { class: "muted" }, n)));
    let rows = [];
    const reqs = data.requests;
    if (state.kind !== "items") {
      main.appendChild(el("h2", { id: "requests-title", "data-title": "Requests waiting for you", "data-count-of": "tr[data-request]" },
        `Requests waiting for you (${reqs.length})`));
      if (reqs.length) {
        const [t, r] = requestTable(reqs, { actions: (r) => [
          el("button", { type: "button", class: "primary", onclick: () => reviewRequest(r, "Approve"), "aria-label": `approve ${r.name}` }, "Approve"), " ",
          el("button", { type: "button", class: "danger", onclick: () => reviewRequest(r, "Reject"), "aria-label": `reject ${r.name}` }, "Reject")] });
        main.appendChild(t); rows = rows.concat(r);
      } else main.appendChild(el("p", { class: "muted", id: "no-requests" }, "No requests waiting for your review."));
    }
    if (state.kind !== "requests") {
      const total = data.itemsTotal;
      main.appendChild(el("h2", { id: "items-title" }, `Certification items waiting for you (${total})`));
      if (total) {
        const shown = data.items;
        main.appendChild(el("div", { class: "bar" },
          el("button", { type: "button", id: "approve-selected", onclick: () => decideItems(shown.filter((i) => state.selected.has(`${i.namespace}/${i.name}`)), "Approve") }, "Approve selected"),
          el("button", { type: "button", class: "danger", id: "revoke-selected", onclick: () => decideItems(shown.filter((i) => state.selected.has(`${i.namespace}/${i.name}`)), "Revoke") }, "Revoke selected")));
        const [t, r] = itemTable(shown, { selectable: true });
        main.appendChild(t); main.appendChild(pager(total) || el("span")); rows = rows.concat(r);
      } else main.appendChild(el("p", { class: "muted" }, "No certification items waiting for your decision."));
    }
    setRows(rows);
  },

  async mine(main) {
    const data = await api("/api/mine");
    main.replaceChildren(el("h2", {}, "My requests"), filterBar());
    if (!data.length) { main.appendChild(el("p", { class: "muted" }, "You have no requests; file one with kubectl gatehouse request ROLE.")); setRows([]); return; }
    const [t, r] = requestTable(data, { actions: (r) => [
      r.canExtend ? el("button", { type: "button", onclick: () => again(r, true), "aria-label": `extend ${r.name}` }, "Extend") : null, " ",
      r.phase && r.phase !== "Pending" && r.phase !== "Approved" ? el("button", { type: "button", onclick: () => again(r, false), "aria-label": `request ${r.name} again` }, "Request again") : null] });
    main.appendChild(t);
    setRows(r);
  },

  async request(main, ns, name) {
    const r = await api(`/api/request/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
    const fields = [
      ["Phase", el("span", { class: `phase-${r.phase}`, id: "phase" }, r.phase || "new")],
      ["Role", r.role], ["Scope", r.scope], ["For", r.subject], ["Namespace", r.namespace],
      ["Requester", `${r.requester.username}${r.requester.groups.length ? " (" + r.requester.groups.join(", ") + ")" : ""}`],
      ["Reason", r.reason || "-"], ["Policy", r.policy || "-"], ["Approvals", r.approvals || "-"],
      ["Why", r.message || "-"],
    ];
    main.replaceChildren(el("h2", {}, `Request ${r.name}`),
      el("dl", { class: "fields" }, fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
    const grant = el("section", { id: "grant", "aria-labelledby": "grant-title" }, el("h2", { id: "grant-title" }, "Grant"));
    if (r.grant) {
      grant.appendChild(el("p", { id: "grant-binding" }, `${r.grant.kind} ${r.grant.namespace ? r.grant.namespace + "/" : ""}${r.grant.name}`,
        r.expiresAt ? [" — ", el("span", { class: "countdown", "data-until": r.expiresAt }, left(r.expiresAt)), " left"] : null));
    } else grant.appendChild(el("p", { class: "muted" }, "No access granted (yet)."));
    main.appendChild(grant);
    if (r.stages.length) {
      main.appendChild(el("h2", {}, "Stages"));
      main.appendChild(el("table", { id: "stages" }, el("thead", {}, el("tr", {}, ["Stage", "State", "Approvals"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, r.stages.map((s) => el("tr", {}, el("td", {}, s.name), el("td", {}, s.status), el("td", {}, `${s.received} of ${s.required}`))))));
    }
    if (r.reviewGroups.length) {
      main.appendChild(el("h2", {}, "Who approved"));
      main.appendChild(el("table", { id: "review-groups" }, el("thead", {}, el("tr", {}, ["Group", "Stage", "State", "By", "When"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, r.reviewGroups.map((g) => el("tr", {}, el("td", {}, g.group), el("td", {}, g.stage || "-"), el("td", {}, g.status + (g.forced ? " (forced)" : "")),
          el("td", {}, g.reviewedBy || "-"), el("td", {}, g.reviewedAt ? new Date(g.reviewedAt).toLocaleString() : "-"))))));
    }
    main.appendChild(el("h2", {}, "Decisions"));
    if (r.decisions.length) {
      main.appendChild(el("table", { id: "decisions" }, el("thead", {}, el("tr", {}, ["When", "Who", "Decision", "Counted", "Why"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, r.decisions.map((d) => el("tr", {}, el("td", {}, new Date(d.at).toLocaleString()),
          el("td", {}, d.reviewer), el("td", {}, d.decision), el("td", {}, d.accepted ? "yes" : "no"),
          el("td", {}, d.message ? `${d.reason}: ${d.message}` : d.reason))))));
    } else main.appendChild(el("p", { class: "muted" }, "No decisions yet."));
    const acts = el("div", { class: "bar" });
    if (r.phase === "Pending") {
      acts.append(el("button", { type: "button", class: "primary", id: "approve", onclick: () => reviewRequest(r, "Approve") }, "Approve"), " ",
        el("button", { type: "button", class: "danger", id: "reject", onclick: () => reviewRequest(r, "Reject") }, "Reject"));
      if (!r.canReview) acts.append(el("span", { class: "muted" }, r.mine ? " This is your own request: the operator does not count your approval." : " You are not among this stage's reviewers."));
    }
    if (r.phase === "Active") acts.append(el("button", { type: "button", class: "danger", id: "revoke", onclick: () => reviewRequest(r, "Revoke") }, "Revoke"));
    acts.append(" ", el("button", { type: "button", id: "comment", onclick: () => reviewRequest(r, "Comment") }, "Comment"));
    if (r.canExtend) acts.append(" ", el("button", { type: "button", onclick: () => again(r, true) }, "Extend"));
    main.appendChild(acts);
    setRows([]);
  },

  async runs(main) {
    const runs = await api("/api/runs");
    main.replaceChildren(el("h2", {}, "Campaign runs"));
    if (!runs.length) { main.appendChild(el("p", { class: "muted" }, "No certification items you can see.")); setRows([]); return; }
    const body = el("tbody");
    const rows = [];
    for (const r of runs) {
      const tr = el("tr", {}, el("td", {}, link(route("run", r.campaign, r.run), r.run)), el("td", {}, r.campaign),
        el("td", {}, String(r.items)), el("td", {}, String(r.waitingForMe)));
      body.appendChild(tr);
      rows.push({ tr, open: () => (location.hash = route("run", r.campaign, r.run)) });
    }
    main.appendChild(el("table", {}, el("thead", {}, el("tr", {}, ["Run", "Campaign", "Items", "Waiting for you"].map((h) => el("th", {}, h)))), body));
    setRows(rows);
  },

  async run(main, campaign, run) {
    const v = await api(`/api/run/${encodeURIComponent(campaign)}/${encodeURIComponent(run)}`);
    const p = v.progress;
    const by = el("select", { id: "group-by", "aria-label": "Group by" },
      el("option", { value: "binding", selected: state.groupBy !== "subject" }, "binding"),
      el("option", { value: "subject", selected: state.groupBy === "subject" }, "subject"));
    by.addEventListener("change", () => { state.groupBy = by.value; render(false); });
    main.replaceChildren(el("h2", {}, `Run ${v.run}`),
      el("p", {}, `Campaign ${v.campaign}: ${p.items} items, ${p.approved} approved, ${p.revoked} revoked, ${p.unreviewed} not decided; `,
        el("progress", { max: p.items || 1, value: p.items - p.unreviewed, "aria-label": "decided" }), ` ${p.closed} closed`),
      el("table", { id: "levels" }, el("thead", {}, el("tr", {}, ["Level", "Decided", "Open", "Waiting", "Fell due"].map((h) => el("th", {}, h)))),
        el("tbody", {}, p.levels.map((l) => el("tr", {}, el("td", {}, l.name), el("td", {}, String(l.decided)), el("td", {}, String(l.open)),
          el("td", {}, String(l.waiting)), el("td", {}, String(l.expired)))))));
    const items = v.items.slice();
    items.sort((a, b) => (state.groupBy === "subject" ? a.subject.localeCompare(b.subject) : a.binding.localeCompare(b.binding)));
    const shown = items.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const sel = () => shown.filter((i) => state.selected.has(`${i.namespace}/${i.name}`));
    main.appendChild(filterBar([el("label", { for: "group-by" }, "Group by"), by]));
    main.append(el("div", { class: "bar" },
      el("button", { type: "button", class: "primary", id: "approve-recommended", onclick: () => approveRecommended(v) }, "Approve recommended"),
      el("button", { type: "button", id: "approve-selected", onclick: () => decideItems(sel(), "Approve") }, "Approve selected"),
      el("button", { type: "button", class: "danger", id: "revoke-selected", onclick: () => decideItems(sel(), "Revoke") }, "Revoke selected"),
      el("button", { type: "button", id: "reassign-selected", onclick: () => decideItems(sel(), "Reassign") }, "Reassign selected"),
      el("span", { class: "muted" }, "Report:"),
      el("button", { type: "button", id: "report-csv", onclick: () => download(v.campaign, v.run, "csv") }, "CSV"),
      el("button", { type: "button", id: "report-json", onclick: () => download(v.campaign, v.run, "json") }, "JSON")),
      el("p", { id: "report-sha", class: "muted" }, reportLine(v.campaign, v.run)));
    const [t, r] = itemTable(shown, { selectable: true, grouped: (i) => (state.groupBy === "subject" ? i.subject : i.binding) });
    main.appendChild(t);
    const pg = pager(items.length);
    if (pg) main.appendChild(pg);
    setRows(r);
  },
};

// ---- routing and live updates ----
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = pages[parts[0]] ? parts[0] : "queue";
  return [name, parts.slice(1)];
}

let rendering = null;
async function render(fresh) {
  const [name, args] = parseRoute();
  if (fresh) { state.page = 0; state.selected.clear(); state.current = 0; state.filter = ""; }
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${name}`);
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
  }
  const main = $("main");
  const focused = document.activeElement && document.activeElement.id;
  const job = (async () => {
    try {
      await pages[name](main, ...args);
      main.setAttribute("data-page", name);
      main.setAttribute("data-rendered", String(Date.now()));
    } catch (e) {
      main.replaceChildren(el("h2", {}, "Cannot show this page"), el("p", { class: "error", role: "alert" }, e.message));
    }
  })();
  rendering = job;
  await job;
  if (focused && $(focused) && !fresh) {
    const f = $(focused);
    f.focus();
    // A re-drawn filter keeps its caret at the end of what was typed.
    if (f.tagName === "INPUT" && f.type === "search") f.setSelectionRange(f.value.length, f.value.length);
  }
  if (fresh) main.focus({ preventScroll: true });
}
let timer = null;
function refresh() {
  clearTimeout(timer);
  timer = setTimeout(() => render(false), 150);
}

async function live() {
  const status = $("live");
  for (;;) {
    try {
      const r = await fetch("/api/events", { headers: { "X-Gatehouse-Secret": SECRET }, cache: "no-store" });
      if (!r.ok) throw new Error(await r.text());
      status.textContent = "live"; status.className = "live on";
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          if (/^event: change$/m.test(block)) refresh();
        }
      }
    } catch (e) {
      status.textContent = "not live: " + e.message;
    }
    status.className = "live off";
    await new Promise((res) => setTimeout(res, 2000));
  }
}

async function start() {
  if (!SECRET) {
    $("main").replaceChildren(el("p", { class: "error", role: "alert" },
      "This page needs the address kubectl gatehouse ui printed (it carries the desk's secret)."));
    return;
  }
  try {
    state.me = await api("/api/me");
    $("who").textContent = `${state.me.username} on ${state.me.server}`;
  } catch (e) {
    notice(e.message, "bad");
  }
  if (!location.hash || location.hash === "#") history.replaceState(null, "", "#/queue");
  window.addEventListener("hashchange", () => render(true));
  await render(true);
  live();
}
start();
