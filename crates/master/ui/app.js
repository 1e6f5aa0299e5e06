// tepui master web UI: overview (leader, metrics, agents, frameworks, tasks) refreshed by polling.
//
// Data: /ui/status (any master; names the leader, so a standby sends the browser to the leader's
// UI), /state and /metrics/snapshot (leader only). When this master stops answering, failover.js
// takes the browser to the other masters /ui/status listed (this file tells it how each poll
// went). Tables are rendered from strings and replaced only when their content changed, keeping
// the focused row focused; the task list renders one page (TASKS_PER_PAGE rows) of the filtered
// list, so 10,000 tasks cost one array filter per tick.
"use strict";

const REFRESH_MS = 2500;
const TASKS_PER_PAGE = 100;

const ui = {
  status: null,
  state: null,
  taskKind: "active",
  taskPage: 0,
  agentsById: new Map(),
  route: null,
};
window.tepui = ui;

const $ = (selector) => document.querySelector(selector);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function num(value, digits) {
  const n = Number(value || 0);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits ?? 2);
}

// Megabytes (Mesos' unit for mem and disk) in a readable unit.
function megabytes(mb) {
  const n = Number(mb || 0);
  if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + " TB";
  if (n >= 1024) return (n / 1024).toFixed(1) + " GB";
  return num(n, 0) + " MB";
}

function bytes(n) {
  const b = Number(n || 0);
  if (b < 1024) return b + " B";
  if (b < 1024 * 1024) return (b / 1024).toFixed(1) + " KB";
  return megabytes(b / (1024 * 1024));
}

function time(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function shortId(id) {
  return id && id.length > 14 ? "…" + id.slice(-12) : id || "";
}

// A leader-only endpoint answered as a standby does (307 elsewhere, or 503 during an election).
class NotLeaderError extends Error {}

async function getJson(url) {
  // "manual": a standby's 307 points at another origin, which the page must not follow blindly.
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", redirect: "manual" });
  if (response.type === "opaqueredirect" || response.status === 503) {
    throw new NotLeaderError(`${url}: this master no longer serves it (${response.status || "redirect"})`);
  }
  if (!response.ok) {
    const body = await response.text().catch(() => "");
    throw new Error(`${url}: ${response.status} ${body}`.trim());
  }
  return response.json();
}

function notice(text) {
  const el = $("#notice");
  el.hidden = !text;
  el.textContent = text || "";
}

// Replaces a tbody's rows only when they changed; keeps focus on the element with the same
// data-key, so a keyboard user is not thrown out of the table by a refresh.
function fillRows(tbody, html) {
  if (tbody.dataset.rendered === html) return;
  const focused = document.activeElement;
  const key = tbody.contains(focused) ? focused.dataset.key : null;
  tbody.innerHTML = html;
  tbody.dataset.rendered = html;
  if (key) {
    const again = tbody.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

function sandboxPath(task) {
  const executor = task.executor_id || task.id;
  return `/frameworks/${task.framework_id}/executors/${executor}/runs/latest`;
}

function sandboxHref(agentId, path, file) {
  const kind = file ? "file" : "files";
  return `#/${kind}/${encodeURIComponent(agentId)}?path=${encodeURIComponent(path)}`;
}
ui.sandboxHref = sandboxHref;

// ---- header and leadership -------------------------------------------------------------------

function renderStatus(status) {
  $("#cluster").textContent = status.cluster || "unnamed";
  $("#cluster").classList.toggle("muted", !status.cluster);
  $("#version").textContent = status.version;
  $("#tepui-version").textContent = `tepui ${status.tepui_version}`;
  const leader = $("#leader");
  leader.textContent = status.leader || status.leader_endpoint || "none elected";
  leader.dataset.endpoint = status.leader_endpoint || "";
  const notes = { leading: "(this master)", recovering: "(this master, recovering)" };
  $("#leader-note").textContent = notes[status.state] || (status.leader_endpoint ? "(this master is a standby)" : "");
}

// True when this master can serve the data; otherwise shows why, or leaves for the leader.
// During a failover hop the notices say which master stopped answering (failover.js).
function followLeader(status) {
  const failover = window.tepuiFailover;
  if (status.state === "leading") return true;
  if (status.state === "recovering") {
    notice(failover.note() + "This master was elected and is recovering its registry; data follows shortly.");
    return false;
  }
  if (status.leader_url && status.leader_endpoint !== status.endpoint) {
    if (failover.isGone(status.leader_endpoint)) {
      notice(failover.note() + `This master (${status.endpoint}) still names it as the leader; waiting for the election to notice…`);
      return false;
    }
    notice(failover.note() + `This master is a standby; going to the leader at ${status.leader_endpoint}…`);
    window.location.href = status.leader_url + failover.query() + window.location.hash;
    return false;
  }
  notice(failover.note() + "This master is a standby and no leader is elected; waiting for an election…");
  return false;
}

// ---- metrics ---------------------------------------------------------------------------------

const METRICS = [
  ["master/elected", "Elected", num],
  ["master/uptime_secs", "Uptime", (v) => `${Math.floor(v / 3600)}h ${Math.floor((v % 3600) / 60)}m`],
  ["master/slaves_active", "Agents active", num],
  ["master/slaves_disconnected", "Agents disconnected", num],
  ["master/slaves_unreachable", "Agents unreachable", num],
  ["master/frameworks_active", "Frameworks active", num],
  ["master/tasks_running", "Tasks running", num],
  ["master/tasks_staging", "Tasks staging", num],
  ["master/tasks_finished", "Tasks finished", num],
  ["master/tasks_failed", "Tasks failed", num],
  ["master/tasks_killed", "Tasks killed", num],
  ["master/tasks_lost", "Tasks lost", num],
  ["master/cpus_percent", "CPUs allocated", (v) => `${(v * 100).toFixed(1)} %`],
  ["master/mem_percent", "Mem allocated", (v) => `${(v * 100).toFixed(1)} %`],
  ["master/disk_percent", "Disk allocated", (v) => `${(v * 100).toFixed(1)} %`],
  ["master/outstanding_offers", "Outstanding offers", num],
  ["registrar/log/recovered", "Registry log recovered", num],
];

function renderMetrics(metrics) {
  const html = METRICS.filter(([key]) => key in metrics)
    .map(([key, label, format]) => `<div data-metric="${esc(key)}"><dt>${esc(label)}</dt><dd>${esc(format(metrics[key]))}</dd></div>`)
    .join("");
  const dl = $("#metrics");
  if (dl.dataset.rendered !== html) {
    dl.innerHTML = html;
    dl.dataset.rendered = html;
  }
}

// ---- agents and frameworks -------------------------------------------------------------------

function usage(used, total, format) {
  const u = Number(used || 0), t = Number(total || 0);
  return `${format(u)} / ${format(t)} <span class="muted">(${format(Math.max(0, t - u))})</span>`;
}

function renderAgents(state) {
  ui.agentsById = new Map(state.slaves.map((a) => [a.id, a]));
  const rows = state.slaves.slice().sort((a, b) => a.hostname.localeCompare(b.hostname)).map((a) => {
    const r = a.resources || {}, u = a.used_resources || {};
    const attrs = Object.entries(a.attributes || {}).map(([k, v]) => `<span class="tag">${esc(k)}=${esc(v)}</span>`).join(" ");
    const status = !a.active ? "inactive" : a.connected === false ? "disconnected" : "active";
    return `<tr data-testid="agent-row" data-agent-id="${esc(a.id)}">
      <td>${esc(a.hostname)}:${esc(a.port)}</td><td title="${esc(a.id)}"><code>${esc(shortId(a.id))}</code></td>
      <td><span class="state state-${esc(status)}">${esc(status)}</span></td>
      <td>${usage(u.cpus, r.cpus, (v) => num(v))}</td><td>${usage(u.mem, r.mem, megabytes)}</td>
      <td>${usage(u.disk, r.disk, megabytes)}</td><td>${attrs || '<span class="muted">none</span>'}</td></tr>`;
  });
  $("#agents-count").textContent = `(${rows.length})`;
  fillRows($("#agents tbody"), rows.join("") || '<tr><td colspan="7" class="muted">No agents registered.</td></tr>');
}

function renderFrameworks(state) {
  const row = (f, completed) => {
    const status = completed ? "completed" : !f.active ? "inactive" : f.connected ? "active" : "disconnected";
    const u = f.used_resources || {};
    const name = f.webui_url ? `<a href="${esc(f.webui_url)}" data-key="fw-${esc(f.id)}">${esc(f.name)}</a>` : esc(f.name);
    return `<tr data-testid="framework-row" data-framework-id="${esc(f.id)}">
      <td>${name}</td><td title="${esc(f.id)}"><code>${esc(shortId(f.id))}</code></td>
      <td><span class="state state-${esc(status)}">${esc(status)}</span></td><td>${esc(f.role)}</td><td>${esc(f.user)}</td>
      <td>${(f.tasks || []).length}</td><td>${num(u.cpus)}</td><td>${megabytes(u.mem)}</td><td>${time(f.registered_time)}</td></tr>`;
  };
  const rows = state.frameworks.map((f) => row(f, false)).concat((state.completed_frameworks || []).map((f) => row(f, true)));
  $("#frameworks-count").textContent = `(${state.frameworks.length} active, ${(state.completed_frameworks || []).length} completed)`;
  fillRows($("#frameworks tbody"), rows.join("") || '<tr><td colspan="9" class="muted">No frameworks.</td></tr>');
}

// ---- tasks -----------------------------------------------------------------------------------

function lastUpdate(task) {
  const statuses = task.statuses || [];
  return statuses.length ? statuses[statuses.length - 1].timestamp : 0;
}

// Active and completed task lists, each newest first, computed once per /state.
function collectTasks(state) {
  const active = [], completed = [];
  for (const f of state.frameworks) {
    for (const t of f.tasks || []) active.push(t);
    for (const t of f.unreachable_tasks || []) active.push(t);
    for (const t of f.completed_tasks || []) completed.push(t);
  }
  for (const f of state.completed_frameworks || []) {
    for (const t of (f.tasks || []).concat(f.completed_tasks || [])) completed.push(t);
  }
  const byTime = (a, b) => lastUpdate(b) - lastUpdate(a) || (a.id < b.id ? -1 : 1);
  active.sort(byTime);
  completed.sort(byTime);
  const names = new Map(state.frameworks.concat(state.completed_frameworks || []).map((f) => [f.id, f.name]));
  return { active, completed, names };
}

function taskMatches(task, needle, names) {
  if (!needle) return true;
  const agent = ui.agentsById.get(task.slave_id);
  const hay = [task.id, task.name, task.state, task.framework_id, names.get(task.framework_id), task.slave_id, agent && agent.hostname];
  return hay.some((v) => v && String(v).toLowerCase().includes(needle));
}

function renderTasks() {
  if (!ui.tasks) return;
  const needle = $("#task-filter").value.trim().toLowerCase();
  const all = ui.tasks[ui.taskKind];
  const list = needle ? all.filter((t) => taskMatches(t, needle, ui.tasks.names)) : all;
  const pages = Math.max(1, Math.ceil(list.length / TASKS_PER_PAGE));
  ui.taskPage = Math.min(ui.taskPage, pages - 1);
  const start = ui.taskPage * TASKS_PER_PAGE;
  const page = list.slice(start, start + TASKS_PER_PAGE);
  const rows = page.map((t) => {
    const agent = ui.agentsById.get(t.slave_id);
    const r = t.resources || {};
    const agentCell = agent ? esc(agent.hostname) : `<code title="${esc(t.slave_id)}">${esc(shortId(t.slave_id))}</code>`;
    const sandbox = `<a data-testid="sandbox-link" data-key="sb-${esc(t.framework_id)}-${esc(t.id)}" href="${esc(sandboxHref(t.slave_id, sandboxPath(t)))}">Sandbox</a>`;
    return `<tr data-testid="task-row" data-task-id="${esc(t.id)}" data-state="${esc(t.state)}">
      <td><code>${esc(t.id)}</code></td><td>${esc(t.name)}</td><td><span class="state state-${esc(t.state)}">${esc(t.state)}</span></td>
      <td title="${esc(t.framework_id)}">${esc(ui.tasks.names.get(t.framework_id) || shortId(t.framework_id))}</td><td>${agentCell}</td>
      <td>${num(r.cpus)}</td><td>${megabytes(r.mem)}</td><td>${megabytes(r.disk)}</td><td>${time(lastUpdate(t))}</td><td>${sandbox}</td></tr>`;
  });
  fillRows($("#tasks tbody"), rows.join("") || `<tr><td colspan="10" class="muted">No ${ui.taskKind} tasks${needle ? " match the filter" : ""}.</td></tr>`);
  $("#tasks-active-count").textContent = `(${ui.tasks.active.length})`;
  $("#tasks-completed-count").textContent = `(${ui.tasks.completed.length})`;
  $("#tasks-range").textContent = list.length ? `${start + 1}–${start + page.length} of ${list.length}` : "0 of 0";
  $("#tasks-prev").disabled = ui.taskPage === 0;
  $("#tasks-next").disabled = ui.taskPage >= pages - 1;
}

function setTaskKind(kind) {
  ui.taskKind = kind;
  ui.taskPage = 0;
  for (const b of document.querySelectorAll("[data-kind]")) b.setAttribute("aria-pressed", String(b.dataset.kind === kind));
  renderTasks();
}

// ---- refresh loop and routing ----------------------------------------------------------------

async function refresh() {
  let status;
  try {
    status = await getJson("/ui/status");
  } catch (error) {
    // A few failures in a row and failover.js looks for the new leader among the known masters.
    if (!window.tepuiFailover.failed(ui.status)) notice(`Cannot reach the master (${error.message}); retrying…`);
    else notice("");
    return;
  }
  window.tepuiFailover.answered(status);
  try {
    ui.status = status;
    renderStatus(status);
    if (!followLeader(status)) return;
    if (ui.route && ui.route.view !== "overview") {
      notice("");
      return;
    }
    const [state, metrics] = await Promise.all([getJson("/state"), getJson("/metrics/snapshot")]);
    ui.state = state;
    ui.tasks = collectTasks(state);
    renderMetrics(metrics);
    renderAgents(state);
    renderFrameworks(state);
    renderTasks();
    $("#updated").textContent = new Date().toLocaleTimeString();
    notice("");
  } catch (error) {
    // Not the leader any more: the next /ui/status (soon) says where it went.
    if (error instanceof NotLeaderError) ui.recheckSoon = true;
    notice(`Cannot read the master's data (${error.message}); retrying…`);
  }
}

async function loop() {
  await refresh();
  const normal = ui.recheckSoon ? window.tepuiFailover.RETRY_MS : REFRESH_MS;
  ui.recheckSoon = false;
  const next = window.tepuiFailover.nextPollMs(normal);
  if (next !== null) setTimeout(loop, next);
}

function parseRoute() {
  const hash = window.location.hash;
  const m = /^#\/(files|file)\/([^?]+)\?(.*)$/.exec(hash);
  if (!m) return { view: "overview" };
  const params = new URLSearchParams(m[3]);
  return { view: m[1] === "file" ? "file" : "files", agentId: decodeURIComponent(m[2]), path: params.get("path") || "" };
}

function route() {
  const previous = ui.route;
  ui.route = parseRoute();
  const overview = ui.route.view === "overview";
  $("#view-overview").hidden = !overview;
  $("#view-sandbox").hidden = overview;
  if (window.tepuiSandbox) window.tepuiSandbox.show(ui.route);
  if (overview && previous && previous.view !== "overview") refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-kind]")) b.addEventListener("click", () => setTaskKind(b.dataset.kind));
  $("#task-filter").addEventListener("input", () => {
    ui.taskPage = 0;
    renderTasks();
  });
  $("#tasks-prev").addEventListener("click", () => {
    ui.taskPage = Math.max(0, ui.taskPage - 1);
    renderTasks();
  });
  $("#tasks-next").addEventListener("click", () => {
    ui.taskPage += 1;
    renderTasks();
  });
  window.addEventListener("hashchange", route);
  route();
  loop();
});

ui.esc = esc;
ui.bytes = bytes;
ui.time = time;
ui.getJson = getJson;
