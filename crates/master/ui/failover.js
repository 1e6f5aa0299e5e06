// tepui master web UI: following a failover when the master this page shows stops answering.
//
// Why navigation: the page talks only to its own origin (assets and data are same-origin), so it
// cannot ask another master's /ui/status. It remembers the masters its own /ui/status lists and,
// after FAILED_POLLS_MAX failed polls in a row, sends the browser to the next one's UI with a
// marker in the query: `?failover=<master that stopped answering>&tried=<a,b>&masters=<a,b,c>`.
// That master's page (leader or standby) then goes on to the leader as a standby page always
// does, carrying the marker; the first page that finds its master leading drops it.
//
// Dead masters: before a hop the page knocks on every untried master (a `no-cors` request to its
// /ui/status: the answer is opaque, but that one came at all is what matters) and hops to the first
// in the list that answered within PROBE_TIMEOUT_MS, so a second master that is down (or frozen)
// does not leave the browser on its error page. When none answers, it says so, lists them as
// links and knocks again after the next failed poll.
//
// Loops: every hop adds its target to `tried`, and a page never hops to a tried master, so a
// chain visits each known master at most once; when none is left it stops and lists them as
// links. A standby that still names the master that stopped answering as leader (its ZooKeeper
// session has not expired yet) waits instead of sending the browser back to it.
"use strict";

(() => {
  const FAILED_POLLS_MAX = 3;
  const RETRY_MS = 1000;
  const PROBE_TIMEOUT_MS = 2000;

  // Resolves true when `endpoint` answers at all within PROBE_TIMEOUT_MS.
  function answers(endpoint) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
    return fetch(`//${endpoint}/ui/status`, { mode: "no-cors", cache: "no-store", signal: controller.signal })
      .then(() => true, () => false)
      .finally(() => clearTimeout(timer));
  }

  function parseMarker(search) {
    const params = new URLSearchParams(search);
    const gone = params.get("failover");
    if (!gone) return null;
    const list = (name) => (params.get(name) || "").split(",").filter(Boolean);
    return { gone, tried: list("tried"), masters: list("masters") };
  }

  const state = {
    marker: parseMarker(window.location.search),
    known: [],
    failedPolls: 0,
    probing: false,
    noneAnswered: false,
    leaving: false,
  };
  if (state.marker) state.known = state.marker.masters.slice();

  // Rebuilt only when its content changes: an alert re-announced every poll would drown a
  // screen reader.
  function banner(text, links) {
    const el = document.getElementById("failover");
    if (!el) return;
    const content = JSON.stringify([text, links || [], window.location.hash]);
    if (el.dataset.rendered === content) return;
    el.dataset.rendered = content;
    el.hidden = !text;
    el.replaceChildren();
    if (!text) return;
    const p = document.createElement("p");
    p.textContent = text;
    el.append(p);
    if (links && links.length) {
      const list = document.createElement("ul");
      list.dataset.testid = "master-links";
      for (const endpoint of links) {
        const a = document.createElement("a");
        a.href = `//${endpoint}/${window.location.hash}`;
        a.textContent = endpoint;
        const item = document.createElement("li");
        item.append(a);
        list.append(item);
      }
      el.append(list);
    }
  }

  function markerQuery(marker) {
    const params = new URLSearchParams({ failover: marker.gone, tried: marker.tried.join(","), masters: marker.masters.join(",") });
    return "?" + params.toString();
  }

  const failover = {
    RETRY_MS,

    // The page's own master answered /ui/status: remember the masters it lists; once it leads,
    // the failover (if this page was a hop) is over and the marker leaves the URL.
    answered(status) {
      state.failedPolls = 0;
      state.noneAnswered = false;
      const listed = (status.masters || []).map((m) => m.endpoint).filter(Boolean);
      if (listed.length) state.known = listed;
      if (state.marker && status.state === "leading") {
        state.marker = null;
        window.history.replaceState(null, "", window.location.pathname + window.location.hash);
      }
      banner("");
    },

    // A poll of the page's own master failed. Returns true when the failover took over (the
    // browser is leaving for another master, or every master was tried and the links are shown).
    failed(lastStatus) {
      state.failedPolls += 1;
      if (state.failedPolls < FAILED_POLLS_MAX) return false;
      if (state.probing || state.leaving) return true;
      const self = (lastStatus && lastStatus.endpoint) || window.location.host;
      const what = lastStatus && lastStatus.state === "leading" ? "leading master" : "master";
      const tried = new Set((state.marker ? state.marker.tried : []).concat([self, window.location.host]));
      const candidates = state.known.filter((endpoint) => !tried.has(endpoint));
      const known = state.known.length ? state.known : [self];
      if (!candidates.length) {
        banner(`The ${what} ${self} stopped answering and no other master is left to try; ` +
          "still retrying this one. Known masters:", known);
        return true;
      }
      // After a round where none answered, its banner stays while they are knocked on again.
      if (!state.noneAnswered) {
        banner(`The ${what} ${self} stopped answering; looking for the new leader at ${candidates.join(", ")}…`);
      }
      state.probing = true;
      Promise.all(candidates.map(answers)).then((answered) => {
        state.probing = false;
        // The page's own master came back while the others were knocked on: stay.
        if (state.failedPolls === 0) return;
        const next = candidates.find((_, i) => answered[i]);
        state.noneAnswered = !next;
        if (!next) {
          banner(`The ${what} ${self} stopped answering and no other master answers either; ` +
            "still retrying. Known masters:", known);
          return;
        }
        const marker = { gone: self, tried: [...tried, next], masters: state.known };
        state.leaving = true;
        window.location.href = `//${next}/${markerQuery(marker)}${window.location.hash}`;
      });
      return true;
    },

    // True when `endpoint` is the master this failover started from: a standby still naming it
    // as leader has not noticed yet, so the page waits instead of going back there.
    isGone(endpoint) {
      return Boolean(state.marker && endpoint === state.marker.gone);
    },

    // What to append to a leader's URL so the chain's memory travels with the browser.
    query() {
      return state.marker ? markerQuery(state.marker) : "";
    },

    // A sentence for the page's notices while a failover is under way ("" otherwise).
    note() {
      return state.marker ? `The master ${state.marker.gone} stopped answering. ` : "";
    },

    // Poll again sooner while the master is failing; never once the browser is leaving.
    nextPollMs(normalMs) {
      if (state.leaving) return null;
      return state.failedPolls > 0 ? RETRY_MS : normalMs;
    },

    state,
  };
  window.tepuiFailover = failover;
})();
