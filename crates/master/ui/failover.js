// tepui master web UI: following a failover when the master this page shows stops answering.
//
// Why navigation: the page talks only to its own origin (assets and data are same-origin), so it
// cannot ask another master's /ui/status. It remembers the masters its own /ui/status lists and,
// after FAILED_POLLS_MAX failed polls in a row, sends the browser to the next one's UI with a
// marker in the query: `?failover=<master that stopped answering>&tried=<a,b>&masters=<a,b,c>`.
// That master's page (leader or standby) then goes on to the leader as a standby page always
// does, carrying the marker; the first page that finds its master leading drops it.
//
// Loops: every hop adds its target to `tried`, and a page never hops to a tried master, so a
// chain visits each known master at most once; when none is left it stops and lists them as
// links. A standby that still names the master that stopped answering as leader (its ZooKeeper
// session has not expired yet) waits instead of sending the browser back to it.
"use strict";

(() => {
  const FAILED_POLLS_MAX = 3;
  const RETRY_MS = 1000;

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
      const self = (lastStatus && lastStatus.endpoint) || window.location.host;
      const what = lastStatus && lastStatus.state === "leading" ? "leading master" : "master";
      const tried = new Set((state.marker ? state.marker.tried : []).concat([self, window.location.host]));
      const next = state.known.find((endpoint) => !tried.has(endpoint));
      if (!next) {
        const known = state.known.length ? state.known : [self];
        banner(`The ${what} ${self} stopped answering and no other master is left to try; ` +
          "still retrying this one. Known masters:", known);
        return true;
      }
      banner(`The ${what} ${self} stopped answering; looking for the new leader at ${next}…`);
      const marker = { gone: self, tried: [...tried, next], masters: state.known };
      state.leaving = true;
      window.location.href = `//${next}/${markerQuery(marker)}${window.location.hash}`;
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
