// tepui master web UI: a task's sandbox. Lists a directory through the master's proxy of the
// agent's /files/browse, and shows a file through /files/read, following it as it grows.
//
// Following works like the Mesos UI's pailer: ask for the size (offset=-1), start TAIL_BYTES
// before the end, then poll from the last offset; a full chunk means more is waiting, so the next
// read goes at once. Offsets count bytes, so each chunk's length is measured in UTF-8 bytes. When
// the file shrinks (rotated or truncated) reading starts again from its beginning.
"use strict";

(() => {
  const TAIL_BYTES = 64 * 1024;
  const CHUNK_BYTES = 64 * 1024;
  const POLL_MS = 1000;
  const KEEP_CHARS = 2 * 1024 * 1024; // the viewer keeps at most this much text
  const ui = window.tepui;
  const $ = (selector) => document.querySelector(selector);
  const encoder = new TextEncoder();

  // One viewer at a time; a new route bumps the generation and older loops stop by themselves.
  const viewer = { generation: 0, agentId: null, path: null, start: 0, offset: 0, timer: null };

  function filesUrl(agentId, operation, params) {
    const query = new URLSearchParams(params).toString();
    return `/agents/${encodeURIComponent(agentId)}/files/${operation}?${query}`;
  }

  function showError(text) {
    const el = $("#sandbox-error");
    el.hidden = !text;
    el.textContent = text || "";
  }

  function parent(path) {
    const cut = path.replace(/\/+$/, "").lastIndexOf("/");
    return cut > 0 ? path.slice(0, cut) : path;
  }

  // The sandbox root is the path up to `runs/<run>`; crumbs start there (above it the agent's
  // path guard refuses to list).
  function crumbs(agentId, path, isFile) {
    const m = /^(.*?\/runs\/[^/]+)(\/.*)?$/.exec(path);
    const root = m ? m[1] : path;
    const rest = m && m[2] ? m[2].split("/").filter(Boolean) : [];
    const links = [`<a href="${ui.esc(ui.sandboxHref(agentId, root))}">sandbox</a>`];
    let current = root;
    rest.forEach((part, i) => {
      current += "/" + part;
      const last = i === rest.length - 1;
      links.push(last ? `<span aria-current="page">${ui.esc(part)}</span>` : `<a href="${ui.esc(ui.sandboxHref(agentId, current, isFile && last))}">${ui.esc(part)}</a>`);
    });
    $("#sandbox-crumbs").innerHTML = links.join(' <span aria-hidden="true">/</span> ');
  }

  function agentLabel(agentId) {
    const agent = ui.agentsById.get(agentId);
    $("#sandbox-agent").textContent = agent ? `${agent.hostname} (${agentId})` : agentId;
  }

  async function browse(route, generation) {
    $("#sandbox-listing").hidden = false;
    $("#file-viewer").hidden = true;
    $("#sandbox-title").textContent = "Sandbox";
    const tbody = $("#sandbox-files tbody");
    tbody.innerHTML = '<tr><td colspan="5" class="muted">Loading…</td></tr>';
    let entries;
    try {
      entries = await ui.getJson(filesUrl(route.agentId, "browse", { path: route.path }));
    } catch (error) {
      if (generation !== viewer.generation) return;
      tbody.innerHTML = "";
      showError(`Cannot list ${route.path}: ${error.message}`);
      return;
    }
    if (generation !== viewer.generation) return;
    const up = /\/runs\/[^/]+\/?$/.test(route.path) ? "" :
      `<tr><td><a href="${ui.esc(ui.sandboxHref(route.agentId, parent(route.path)))}">..</a></td><td></td><td></td><td></td><td></td></tr>`;
    const rows = entries.map((e) => {
      const name = e.path.split("/").pop();
      const dir = String(e.mode).startsWith("d");
      const href = ui.sandboxHref(route.agentId, e.path, !dir);
      const download = dir ? "" : `<a href="${ui.esc(filesUrl(route.agentId, "download", { path: e.path }))}" aria-label="Download ${ui.esc(name)}">Download</a>`;
      return `<tr data-testid="file-row" data-path="${ui.esc(e.path)}"><td><a href="${ui.esc(href)}" data-testid="file-link">${ui.esc(name)}${dir ? "/" : ""}</a></td>
        <td>${dir ? "" : ui.esc(ui.bytes(e.size))}</td><td>${ui.esc(ui.time(e.mtime))}</td><td><code>${ui.esc(e.mode)}</code></td><td>${download}</td></tr>`;
    });
    tbody.innerHTML = up + (rows.join("") || '<tr><td colspan="5" class="muted">Empty directory.</td></tr>');
  }

  function append(text) {
    const pre = $("#file-content");
    if (!text) return;
    pre.append(document.createTextNode(text));
    if (pre.textContent.length > KEEP_CHARS) {
      pre.textContent = pre.textContent.slice(-KEEP_CHARS);
      $("#file-earlier").hidden = true;
    }
    if ($("#follow").checked) pre.scrollTop = pre.scrollHeight;
  }

  async function read(offset, length) {
    return ui.getJson(filesUrl(viewer.agentId, "read", { path: viewer.path, offset: String(offset), length: String(length) }));
  }

  // One step of following: read what was appended; returns the delay before the next step.
  async function poll(generation) {
    const chunk = await read(viewer.offset, CHUNK_BYTES);
    if (generation !== viewer.generation) return null;
    const got = encoder.encode(chunk.data).length;
    if (got > 0) {
      append(chunk.data);
      viewer.offset += got;
      $("#file-size").textContent = `${ui.bytes(viewer.offset)} read`;
      return got >= CHUNK_BYTES ? 0 : POLL_MS;
    }
    const size = (await read(-1, 0)).offset;
    if (generation === viewer.generation && size < viewer.offset) {
      $("#file-content").textContent = "";
      viewer.start = viewer.offset = 0; // the file was truncated or replaced
      return 0;
    }
    return POLL_MS;
  }

  function schedule(generation, delay) {
    clearTimeout(viewer.timer);
    if (delay === null || generation !== viewer.generation || !$("#follow").checked) return;
    viewer.timer = setTimeout(async () => {
      let next = POLL_MS;
      try {
        next = await poll(generation);
        if (generation === viewer.generation) showError("");
      } catch (error) {
        if (generation === viewer.generation) showError(`Cannot read ${viewer.path}: ${error.message}; retrying…`);
      }
      schedule(generation, next);
    }, delay);
  }

  async function view(route, generation) {
    $("#sandbox-listing").hidden = true;
    $("#file-viewer").hidden = false;
    const name = route.path.split("/").pop();
    $("#sandbox-title").textContent = name;
    $("#file-name").textContent = route.path;
    $("#file-download").href = filesUrl(route.agentId, "download", { path: route.path });
    $("#file-content").textContent = "";
    $("#file-earlier").hidden = true;
    Object.assign(viewer, { agentId: route.agentId, path: route.path, start: 0, offset: 0 });
    try {
      const size = (await read(-1, 0)).offset;
      if (generation !== viewer.generation) return;
      viewer.start = viewer.offset = Math.max(0, size - TAIL_BYTES);
      $("#file-earlier").hidden = viewer.start === 0;
    } catch (error) {
      if (generation === viewer.generation) showError(`Cannot read ${route.path}: ${error.message}`);
    }
    if (generation !== viewer.generation) return;
    // The first read happens even when follow is off, so the file shows.
    try {
      schedule(generation, await poll(generation));
    } catch (error) {
      if (generation === viewer.generation) showError(`Cannot read ${route.path}: ${error.message}`);
      schedule(generation, POLL_MS);
    }
  }

  // Prepends up to CHUNK_BYTES from before the first byte shown.
  async function earlier() {
    const generation = viewer.generation;
    const from = Math.max(0, viewer.start - CHUNK_BYTES);
    try {
      const chunk = await read(from, viewer.start - from);
      if (generation !== viewer.generation) return;
      const pre = $("#file-content");
      pre.prepend(document.createTextNode(chunk.data));
      viewer.start = from;
      $("#file-earlier").hidden = from === 0;
    } catch (error) {
      showError(`Cannot read ${viewer.path}: ${error.message}`);
    }
  }

  function show(route) {
    viewer.generation += 1;
    clearTimeout(viewer.timer);
    if (route.view === "overview") return;
    showError("");
    agentLabel(route.agentId);
    crumbs(route.agentId, route.path, route.view === "file");
    if (route.view === "file") view(route, viewer.generation);
    else browse(route, viewer.generation);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#follow").addEventListener("change", () => {
      if ($("#follow").checked && ui.route && ui.route.view === "file") {
        $("#file-content").scrollTop = $("#file-content").scrollHeight;
        schedule(viewer.generation, 0);
      } else {
        clearTimeout(viewer.timer);
      }
    });
    $("#file-earlier").addEventListener("click", earlier);
  });

  window.tepuiSandbox = { show };
})();
