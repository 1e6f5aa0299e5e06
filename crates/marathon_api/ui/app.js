// tepui Marathon web UI: hash-routed views (#/apps, #/apps/<id>, #/deployments, #/new) over the
// REST API v2, polled every REFRESH_MS. Only relative URLs (../v2/...), so the page works the same
// on a standby, which forwards /ui/* and /v2/* to the leader. DOM is built from nodes and text only
// (never from markup strings), so app ids, commands and messages can never inject markup.
'use strict';
(function () {
  const REFRESH_MS = 2500;
  const PAGE_SIZE = 100;
  const API = '../v2/';
  // 400/422 detail paths shown next to a form field; every other path goes to the general box.
  const FIELD_OF_PATH = { '/id': 'id', '/cmd': 'cmd', '/cpus': 'cpus', '/mem': 'mem', '/disk': 'disk', '/instances': 'instances' };
  const FRIENDLY = {
    'error.expected.jsnumber': 'must be a number', 'error.expected.jsstring': 'must be a string',
    'error.expected.jsobject': 'must be a JSON object', 'error.expected.jsarray': 'must be a list',
    'error.expected.jsboolean': 'must be true or false', 'error.path.missing': 'is required',
    'error.expected.int': 'must be a whole number', 'error.expected.jsnumberint': 'must be a whole number',
  };
  const state = { seq: 0, timer: null, refresh: null, info: null, appPage: 0, taskPage: 0, filter: '', formBase: {} };

  // ---- DOM and HTTP helpers ----
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
    return el;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);

  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let res;
    try { res = await fetch(API + path, opts); } catch (e) {
      throw new ApiError(0, 'Cannot reach the server (' + e.message + ')', null);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) throw new ApiError(res.status, (data && data.message) || text || res.statusText, data);
    return data;
  }
  const appPath = (id) => 'apps' + id.split('/').map(encodeURIComponent).join('/');
  const appHref = (id) => '#/apps' + id;

  function time(ts) {
    if (!ts) return '—';
    const d = new Date(ts);
    return h('time', { datetime: ts, title: ts }, isNaN(d) ? ts : d.toLocaleString());
  }

  // Replace a container's children only when `key` changed, and keep keyboard focus on the
  // element with the same data-fk afterwards, so polling never steals focus.
  function update(el, key, build) {
    if (el._key === key) return;
    el._key = key;
    const a = document.activeElement;
    const fk = a && el.contains(a) ? a.getAttribute('data-fk') : null;
    el.replaceChildren(...build());
    if (fk) {
      const n = el.querySelector('[data-fk="' + CSS.escape(fk) + '"]');
      if (n) n.focus();
    }
  }

  function pager(el, total, page, setPage, what) {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const p = Math.min(page, pages - 1);
    update(el, [total, p].join(), () => pages <= 1 ? [] : [
      h('button', { type: 'button', 'data-fk': 'prev', 'data-testid': what + '-prev', disabled: p === 0, onclick: () => setPage(p - 1) }, '‹ Previous'),
      h('span', { 'data-testid': what + '-page' }, `Page ${p + 1} of ${pages} (${total} ${what})`),
      h('button', { type: 'button', 'data-fk': 'next', 'data-testid': what + '-next', disabled: p >= pages - 1, onclick: () => setPage(p + 1) }, 'Next ›'),
    ]);
    return p;
  }

  function setConn(msg) {
    const el = $('#conn');
    if (el.textContent !== msg) el.textContent = msg;
    el.classList.toggle('bad', !!msg);
  }

  function setBadge(deployments) {
    const b = $('#deployment-count');
    const n = String(deployments.length);
    if (b.textContent !== n) b.textContent = n;
  }

  // ---- polling ----
  function poll(fn) {
    const seq = ++state.seq;
    clearTimeout(state.timer);
    state.refresh = fn;
    const tick = async () => {
      if (seq !== state.seq) return;
      if (!document.hidden) {
        try { await fn(); if (seq === state.seq) setConn(''); } catch (e) { if (seq === state.seq) setConn(e.message); }
      }
      if (seq === state.seq) state.timer = setTimeout(tick, REFRESH_MS);
    };
    tick();
  }
  const refreshNow = () => { if (state.refresh) poll(state.refresh); };

  async function masterUi() {
    if (!state.info) state.info = await api('GET', 'info').catch(() => ({}));
    const url = (state.info.marathon_config || {}).mesos_leader_ui_url;
    const fw = state.info.frameworkId;
    return typeof url === 'string' && /^https?:\/\//.test(url) && fw ? { url: url.replace(/\/+$/, ''), fw } : null;
  }

  // ---- status ----
  function appStatus(app, queued) {
    if ((app.deployments || []).length) return 'deploying';
    if (app.instances === 0) return 'suspended';
    if (queued) return 'waiting';
    return 'running';
  }

  function appHealth(app) {
    if (!(app.healthChecks || []).length && !app.tasksHealthy && !app.tasksUnhealthy) return '—';
    const ok = app.tasksHealthy || 0, bad = app.tasksUnhealthy || 0;
    const unknown = Math.max(0, (app.tasksRunning || 0) - ok - bad);
    return [`${ok} healthy`, bad ? `${bad} unhealthy` : '', unknown ? `${unknown} unknown` : ''].filter(Boolean).join(', ');
  }

  function taskHealth(t) {
    const r = t.healthCheckResults || [];
    if (!r.length) return '—';
    if (r.some((x) => x.alive === false)) return 'unhealthy';
    if (r.every((x) => x.alive === true)) return 'healthy';
    return 'unknown';
  }

  function queueMap(queue) {
    const m = new Map();
    for (const q of (queue && queue.queue) || []) if (q.app && q.app.id) m.set(q.app.id, q);
    return m;
  }

  // ---- views ----
  function viewApps(root) {
    const filter = h('input', { id: 'app-filter', type: 'search', placeholder: 'Filter by id', value: state.filter, autocomplete: 'off' });
    const tbody = h('tbody');
    const pagerEl = h('div', { class: 'pager' });
    const empty = h('p', { class: 'empty', hidden: true });
    let data = null;
    const render = () => {
      if (!data) return;
      const f = state.filter.trim().toLowerCase();
      const apps = data.apps.filter((a) => !f || a.id.toLowerCase().includes(f)).sort((a, b) => a.id.localeCompare(b.id));
      const p = pager(pagerEl, apps.length, state.appPage, (n) => { state.appPage = n; render(); }, 'apps');
      const rows = apps.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).map((a) => ({
        id: a.id, status: appStatus(a, data.queue.has(a.id)), queued: data.queue.get(a.id),
        inst: `${a.tasksRunning || 0} / ${a.instances}`, health: appHealth(a), cpus: a.cpus, mem: a.mem, version: a.version,
      }));
      update(tbody, JSON.stringify(rows), () => rows.map((r) => h('tr', { 'data-testid': 'app-row', 'data-app-id': r.id },
        h('td', {}, h('a', { href: appHref(r.id), 'data-fk': r.id }, r.id)),
        h('td', { 'data-testid': 'app-status' }, h('span', { class: 'status s-' + r.status, title: r.status === 'waiting' ? waitTitle(r.queued) : undefined }, r.status)),
        h('td', { 'data-testid': 'app-instances' }, r.inst),
        h('td', { 'data-testid': 'app-health' }, r.health),
        h('td', { class: 'num' }, String(r.cpus)), h('td', { class: 'num' }, String(r.mem)),
        h('td', {}, time(r.version)))));
      empty.hidden = apps.length > 0;
      empty.textContent = data.apps.length ? 'No application matches the filter.' : 'No applications yet. Use “Create application” to start one.';
    };
    filter.addEventListener('input', () => { state.filter = filter.value; state.appPage = 0; render(); });
    root.append(
      h('div', { class: 'bar' }, h('h1', {}, 'Applications'),
        h('label', { for: 'app-filter', class: 'sr-only' }, 'Filter applications by id'), filter),
      h('table', { class: 'grid', id: 'apps-table' },
        h('thead', {}, h('tr', {}, ...['ID', 'Status', 'Running / wanted', 'Health', 'CPUs', 'Mem (MiB)', 'Version'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody),
      empty, pagerEl);
    return async () => {
      const [apps, queue, deps] = await Promise.all([api('GET', 'apps'), api('GET', 'queue'), api('GET', 'deployments')]);
      setBadge(deps);
      data = { apps: apps.apps || [], queue: queueMap(queue) };
      render();
    };
  }

  function waitTitle(q) {
    if (!q) return undefined;
    const d = q.delay || {};
    return d.overdue === false ? `Waiting: backed off, ${d.timeLeftSeconds}s left` : `Waiting for offers (${q.count} to launch)`;
  }

  function viewApp(root, id) {
    const msg = h('div', { id: 'action-msg', class: 'msg', role: 'status', 'aria-live': 'polite' });
    const summary = h('dl', { class: 'summary', id: 'app-summary' });
    const tbody = h('tbody');
    const pagerEl = h('div', { class: 'pager' });
    const versions = h('ul', { id: 'versions', class: 'versions' });
    const config = h('pre', { id: 'app-config', class: 'config' });
    const taskCount = h('span', { id: 'task-count' });
    const head = h('tr');
    let app = null, tasks = [], ui = null;

    const scaleInput = h('input', { id: 'scale-input', type: 'number', min: 0, step: 1, inputmode: 'numeric' });
    const scaleForm = h('form', { id: 'scale-form', class: 'inline', hidden: true },
      h('label', { for: 'scale-input' }, 'Instances'), scaleInput,
      h('button', { type: 'submit', id: 'scale-confirm', class: 'primary' }, 'Scale'),
      h('button', { type: 'button', onclick: () => { scaleForm.hidden = true; $('#scale-app').focus(); } }, 'Cancel'));
    scaleForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = scaleInput.value.trim();
      const n = Number(v);
      if (v === '' || !Number.isInteger(n) || n < 0) { say(msg, 'Instances must be a whole number ≥ 0.', true); scaleInput.focus(); return; }
      scaleForm.hidden = true;
      act(msg, `Scale to ${n}`, 'PUT', appPath(id), { instances: n });
    });
    const destroyBox = h('div', { id: 'destroy-box', class: 'confirm', role: 'alertdialog', 'aria-labelledby': 'destroy-q', hidden: true },
      h('p', { id: 'destroy-q' }, `Destroy ${id}? All its tasks are killed and its definition and versions are removed.`),
      h('button', { type: 'button', id: 'destroy-confirm', class: 'danger', onclick: () => {
        destroyBox.hidden = true;
        act(msg, 'Destroy', 'DELETE', appPath(id), undefined, () => { location.hash = '#/apps'; });
      } }, 'Destroy'),
      h('button', { type: 'button', id: 'destroy-cancel', onclick: () => { destroyBox.hidden = true; $('#destroy-app').focus(); } }, 'Cancel'));

    root.append(
      h('p', { class: 'crumbs' }, h('a', { href: '#/apps' }, 'Applications'), ' / '),
      h('h1', { id: 'app-title' }, id),
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Application actions' },
        h('button', { type: 'button', id: 'scale-app', onclick: () => {
          scaleForm.hidden = false; destroyBox.hidden = true;
          scaleInput.value = app ? app.instances : ''; scaleInput.focus(); scaleInput.select();
        } }, 'Scale'),
        h('button', { type: 'button', id: 'restart-app', onclick: () => act(msg, 'Restart', 'POST', appPath(id) + '/restart') }, 'Restart'),
        h('button', { type: 'button', id: 'suspend-app', onclick: () => act(msg, 'Suspend', 'PUT', appPath(id), { instances: 0 }) }, 'Suspend'),
        h('button', { type: 'button', id: 'destroy-app', class: 'danger', onclick: () => {
          destroyBox.hidden = false; scaleForm.hidden = true; $('#destroy-confirm').focus();
        } }, 'Destroy')),
      scaleForm, destroyBox, msg, summary,
      h('h2', {}, 'Tasks ', taskCount),
      h('table', { class: 'grid', id: 'tasks-table' }, h('thead', {}, head), tbody), pagerEl,
      h('h2', {}, 'Versions'), versions,
      h('details', {}, h('summary', {}, 'Configuration (JSON)'), config));

    const renderTasks = () => {
      const p = pager(pagerEl, tasks.length, state.taskPage, (n) => { state.taskPage = n; renderTasks(); }, 'tasks');
      const cols = ['Task', 'Host', 'Ports', 'State', 'Health', 'Started', 'Version'].concat(ui ? ['Sandbox'] : []);
      update(head, cols.join(), () => cols.map((t) => h('th', { scope: 'col' }, t)));
      const page = tasks.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).map((t) => [t.id, t.host, (t.ports || []).join(', '), t.state,
        taskHealth(t), t.startedAt || t.stagedAt, t.version, t.slaveId]);
      update(tbody, JSON.stringify([page, !!ui]), () => page.map(([tid, host, ports, st, health, started, version, agent]) =>
        h('tr', { 'data-testid': 'task-row', 'data-task-id': tid },
          h('td', { class: 'mono' }, tid), h('td', {}, host), h('td', { class: 'mono' }, ports),
          h('td', {}, h('span', { class: 'tstate t-' + st }, st)), h('td', { class: 'h-' + health }, health),
          h('td', {}, time(started)), h('td', {}, time(version)),
          ui ? h('td', {}, agent ? h('a', { 'data-fk': 'sb' + tid, href: `${ui.url}/#/agents/${encodeURIComponent(agent)}/frameworks/${encodeURIComponent(ui.fw)}/executors/${encodeURIComponent(tid)}/browse` }, 'Sandbox') : '—') : null)));
    };

    return async () => {
      let r, vs, queue;
      api('GET', 'deployments').then(setBadge, () => {});
      try {
        [r, vs, queue, ui] = await Promise.all([api('GET', appPath(id)), api('GET', appPath(id) + '/versions'), api('GET', 'queue'), masterUi()]);
      } catch (e) {
        if (e.status !== 404) throw e;
        app = null;
        update(summary, '404', () => [h('p', { class: 'error' }, e.message, ' ', h('a', { href: '#/apps' }, 'Back to applications'))]);
        return;
      }
      app = r.app;
      const q = queueMap(queue).get(id);
      const st = appStatus(app, !!q);
      const deps = (app.deployments || []).map((d) => d.id);
      const fail = app.lastTaskFailure;
      const items = [
        ['Status', h('span', { class: 'status s-' + st, 'data-testid': 'app-status', title: st === 'waiting' ? waitTitle(q) : undefined }, st)],
        ['Running / wanted', h('span', { 'data-testid': 'app-instances' }, `${app.tasksRunning || 0} / ${app.instances}`)],
        ['Staged', String(app.tasksStaged || 0)], ['Health', appHealth(app)],
        ['Resources', `${app.cpus} CPUs, ${app.mem} MiB mem, ${app.disk} MiB disk`],
        ['Command', h('code', {}, app.cmd || (app.args || []).join(' ') || '—')],
        ['Version', time(app.version)],
        ['Deployments', deps.length ? h('a', { href: '#/deployments' }, deps.join(', ')) : 'none'],
      ];
      if (q) items.push(['Queue', `${q.count} to launch` + (q.delay && q.delay.overdue === false ? `, backed off ${q.delay.timeLeftSeconds}s` : '')]);
      if (fail) items.push(['Last failure', `${fail.state} on ${fail.host} at ${fail.timestamp}: ${fail.message}`]);
      update(summary, JSON.stringify([st, app.tasksRunning, app.instances, app.tasksStaged, app.tasksHealthy, app.tasksUnhealthy, app.version, deps, q, fail, app.cmd]),
        () => items.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      tasks = (app.tasks || []).slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (taskCount.textContent !== `(${tasks.length})`) taskCount.textContent = `(${tasks.length})`;
      renderTasks();
      const list = ((vs && vs.versions) || []).slice().sort().reverse();
      update(versions, JSON.stringify([list, app.version]), () => list.map((v) => h('li', {},
        time(v), v === app.version ? h('span', { class: 'tag' }, 'current') :
          h('button', { type: 'button', 'data-fk': 'v' + v, onclick: () => act(msg, `Roll back to ${v}`, 'PUT', appPath(id), { version: v }) }, 'Roll back to this'))));
      const def = Object.assign({}, app);
      for (const k of ['tasks', 'tasksStaged', 'tasksRunning', 'tasksHealthy', 'tasksUnhealthy', 'deployments', 'lastTaskFailure', 'taskStats', 'readinessCheckResults']) delete def[k];
      const text = JSON.stringify(def, null, 2);
      if (config.textContent !== text) config.textContent = text;
    };
  }

  function say(el, text, bad) { el.replaceChildren(text); el.classList.toggle('bad', !!bad); }

  // Run one changing call; a 409 (locked by a deployment) offers the same call with force=true.
  async function act(msgEl, label, method, path, body, after) {
    say(msgEl, label + '…');
    try {
      const r = await api(method, path, body);
      say(msgEl, r && r.deploymentId ? `${label}: deployment ${r.deploymentId} started.` : `${label}: done.`);
      if (after) after(r);
      refreshNow();
    } catch (e) {
      say(msgEl, `${label} failed: ${e.message}` + detailText(e), true);
      if (e.status === 409 && !/force=true/.test(path)) {
        msgEl.append(' ', h('button', { type: 'button', id: 'force-action', class: 'danger',
          onclick: () => act(msgEl, label + ' (forced)', method, path + (path.includes('?') ? '&' : '?') + 'force=true', body, after) }, 'Force it'));
      }
    }
  }

  function detailText(e) {
    const d = (e.body && e.body.details) || [];
    return d.length ? ' (' + d.map((x) => `${x.path}: ${(x.errors || []).map(friendly).join('; ')}`).join(', ') + ')' : '';
  }
  const friendly = (s) => FRIENDLY[s] || s;

  function viewDeployments(root) {
    const msg = h('div', { id: 'deploy-msg', class: 'msg', role: 'status', 'aria-live': 'polite' });
    const tbody = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true }, 'No deployment is running.');
    root.append(h('h1', {}, 'Deployments'), msg,
      h('table', { class: 'grid', id: 'deployments-table' },
        h('thead', {}, h('tr', {}, ...['ID', 'Applications', 'Step', 'Current actions', 'Version', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody), empty);
    return async () => {
      const deps = (await api('GET', 'deployments')) || [];
      setBadge(deps);
      empty.hidden = deps.length > 0;
      const rows = deps.map((d) => ({ id: d.id, apps: d.affectedApps || [], step: `${d.currentStep} / ${d.totalSteps}`,
        actions: (d.currentActions || []).map((a) => `${a.action} ${a.app || a.pod || ''}`).join(', '), version: d.version }));
      update(tbody, JSON.stringify(rows), () => rows.map((d) => h('tr', { 'data-testid': 'deployment-row', 'data-deployment-id': d.id },
        h('td', { class: 'mono' }, d.id),
        h('td', {}, ...d.apps.flatMap((a, i) => [i ? ', ' : '', h('a', { href: appHref(a), 'data-fk': d.id + a }, a)])),
        h('td', {}, d.step), h('td', {}, d.actions), h('td', {}, time(d.version)),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', 'data-testid': 'cancel-deployment', 'data-fk': 'c' + d.id, title: 'Roll back: starts a deployment that reverts the affected apps',
            onclick: () => act(msg, `Cancel ${d.id}`, 'DELETE', 'deployments/' + encodeURIComponent(d.id)) }, 'Cancel (roll back)'),
          h('button', { type: 'button', class: 'danger', 'data-testid': 'stop-deployment', 'data-fk': 's' + d.id, title: 'Stop where it is, no rollback',
            onclick: () => act(msg, `Stop ${d.id}`, 'DELETE', 'deployments/' + encodeURIComponent(d.id) + '?force=true') }, 'Stop')))));
    };
  }

  // ---- create form ----
  const FORM_FIELDS = [
    { key: 'id', label: 'ID', tag: 'input', attrs: { type: 'text', placeholder: '/my-app', autocomplete: 'off', required: true }, text: true },
    { key: 'cmd', label: 'Command', tag: 'textarea', attrs: { rows: 3, placeholder: 'python3 -m http.server $PORT0' }, text: true },
    { key: 'cpus', label: 'CPUs', attrs: { inputmode: 'decimal' }, value: '0.1' },
    { key: 'mem', label: 'Memory (MiB)', attrs: { inputmode: 'decimal' }, value: '128' },
    { key: 'disk', label: 'Disk (MiB)', attrs: { inputmode: 'decimal' }, value: '0' },
    { key: 'instances', label: 'Instances', attrs: { inputmode: 'numeric' }, value: '1' },
  ];

  function viewNew(root) {
    state.formBase = {};
    const jsonToggle = h('input', { type: 'checkbox', id: 'json-mode' });
    const fields = h('div', { id: 'form-fields', class: 'fields' }, FORM_FIELDS.map((f) => h('div', { class: 'field' },
      h('label', { for: 'app-' + f.key }, f.label),
      h(f.tag || 'input', Object.assign({ id: 'app-' + f.key, name: f.key, 'aria-describedby': 'err-' + f.key }, f.tag ? {} : { type: 'text' }, f.attrs)),
      h('div', { class: 'field-error', id: 'err-' + f.key, 'data-error-for': f.key }))));
    const json = h('div', { id: 'json-fields', class: 'field', hidden: true },
      h('label', { for: 'app-json' }, 'Application definition (JSON)'),
      h('textarea', { id: 'app-json', rows: 18, spellcheck: 'false', 'aria-describedby': 'err-json' }),
      h('div', { class: 'field-error', id: 'err-json', 'data-error-for': 'json' }));
    const general = h('div', { id: 'form-error', class: 'error-box', 'data-error-for': 'general', role: 'alert', hidden: true });
    const form = h('form', { id: 'app-form', novalidate: true },
      h('div', { class: 'bar' }, h('h1', {}, 'Create application'),
        h('label', { class: 'toggle' }, jsonToggle, ' JSON mode')),
      general, fields, json,
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'submit-app', class: 'primary' }, 'Create application'),
        h('a', { href: '#/apps', class: 'button' }, 'Cancel')));
    root.append(form);
    for (const f of FORM_FIELDS) if (f.value) $('#app-' + f.key, form).value = f.value;

    jsonToggle.addEventListener('change', () => {
      clearErrors(form);
      if (jsonToggle.checked) {
        $('#app-json', form).value = JSON.stringify(formToJson(form), null, 2);
      } else {
        let o;
        try { o = parseJsonBox(form); } catch (e) { jsonToggle.checked = true; fieldError(form, 'json', e.message); return; }
        jsonToFields(form, o);
      }
      fields.hidden = jsonToggle.checked;
      json.hidden = !jsonToggle.checked;
      (jsonToggle.checked ? $('#app-json', form) : $('#app-id', form)).focus();
    });

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      let body;
      if (jsonToggle.checked) {
        try { body = parseJsonBox(form); } catch (e) { fieldError(form, 'json', e.message); $('#app-json', form).focus(); return; }
      } else body = formToJson(form);
      const submit = $('#submit-app', form);
      submit.disabled = true;
      try {
        const created = await api('POST', 'apps', body);
        location.hash = appHref((created && created.id) || body.id);
      } catch (e) {
        showErrors(form, e, jsonToggle.checked);
      } finally { submit.disabled = false; }
    });
    return async () => setBadge((await api('GET', 'deployments')) || []);
  }

  function parseJsonBox(form) {
    let o;
    try { o = JSON.parse($('#app-json', form).value); } catch (e) { throw new Error('Not valid JSON: ' + e.message); }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error('The definition must be a JSON object.');
    return o;
  }

  // Form → app JSON, on top of whatever other keys the JSON mode held. A number field that does
  // not parse is sent as text, so the API's 400 names the field.
  function formToJson(form) {
    const o = Object.assign({}, state.formBase);
    for (const f of FORM_FIELDS) {
      const raw = $('#app-' + f.key, form).value;
      const v = f.text ? raw.trim() : raw.trim() === '' ? undefined : Number.isFinite(Number(raw)) ? Number(raw) : raw.trim();
      if (v === undefined || v === '') delete o[f.key]; else o[f.key] = v;
    }
    return o;
  }

  function jsonToFields(form, o) {
    state.formBase = o;
    for (const f of FORM_FIELDS) {
      const v = o[f.key];
      $('#app-' + f.key, form).value = v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
  }

  function clearErrors(form) {
    for (const el of form.querySelectorAll('[data-error-for]')) { el.textContent = ''; if (el.id === 'form-error') el.hidden = true; }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  function fieldError(form, key, text) {
    const el = $(`[data-error-for="${key}"]`, form);
    el.textContent = el.textContent ? el.textContent + '; ' + text : text;
    const input = $('#app-' + key, form);
    if (input) input.setAttribute('aria-invalid', 'true');
  }

  // 400/422 details go next to their field (and are listed in the general box in JSON mode,
  // where the fields are hidden); other paths and the message go to the general box.
  function showErrors(form, e, jsonMode) {
    const general = [];
    let first = null;
    for (const d of (e.body && e.body.details) || []) {
      const text = (d.errors || []).map(friendly).join('; ') || 'is invalid';
      const key = FIELD_OF_PATH[d.path];
      if (key) { fieldError(form, key, text); first = first || key; }
      if (!key || jsonMode) general.push(d.path && d.path !== '/' ? `${d.path}: ${text}` : text);
    }
    if (e.status === 409 && !(e.body && e.body.deployments)) { fieldError(form, 'id', e.message); first = first || 'id'; }
    const box = $('#form-error', form);
    box.replaceChildren(h('strong', {}, e.status ? `${e.message} (HTTP ${e.status})` : e.message),
      general.length ? h('ul', {}, general.map((g) => h('li', {}, g))) : '');
    box.hidden = false;
    if (first && !jsonMode) $('#app-' + first, form).focus();
    else if (jsonMode) $('#app-json', form).focus();
  }

  // ---- router ----
  function route() {
    const path = location.hash.replace(/^#/, '') || '/apps';
    if (path === '/new') return { name: 'new' };
    if (path === '/deployments') return { name: 'deployments' };
    if (path.startsWith('/apps/') && path.length > 6) return { name: 'app', id: decodeURIComponent(path.slice(5)) };
    return { name: 'apps' };
  }

  function show(focus) {
    const r = route();
    const root = $('#view');
    root.replaceChildren();
    state.taskPage = 0;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === (r.name === 'app' ? 'apps' : r.name)) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const refresh = r.name === 'new' ? viewNew(root) : r.name === 'deployments' ? viewDeployments(root)
      : r.name === 'app' ? viewApp(root, r.id) : viewApps(root);
    document.title = (r.name === 'app' ? r.id : { new: 'Create application', deployments: 'Deployments', apps: 'Applications' }[r.name]) + ' · Marathon';
    if (focus) (r.name === 'new' ? $('#app-id') : root).focus();
    poll(refresh);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#create-app').addEventListener('click', () => { location.hash = '#/new'; });
    window.addEventListener('hashchange', () => show(true));
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshNow(); });
    show(false);
  });
})();
