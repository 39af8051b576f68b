/*! actionkit.js | the browser side of actionkit's action protocol (version 1) | BSD-3-Clause
 *
 * Forms that name an action (a `$ACTION_ID_<id>` field, or a submit button with such a name) are
 * sent with fetch-like XHR instead of a full navigation; the answer carries the action's result
 * and the page rendered after it, which is morphed into the document (idiomorph). Without this
 * script the same forms work as plain HTML forms: the server answers with a 303 or the page.
 *
 * Configured from the <script> tag's data attributes (see actionkit.jinja.actionkit_script);
 * defines one global, `actionkit`.
 */
(() => {
  "use strict";

  // The protocol: the same names as actionkit/protocol.py (a test checks that they agree).
  const ACTION_ID_HEADER = "Action-Id";
  const ACTION_BOUND_HEADER = "Action-Bound";
  const ACTION_PAGE_HEADER = "Action-Page";
  const ACTION_FIELD_PREFIX = "$ACTION_ID_";
  const UNKNOWN_ACTION = "unknown_action";
  const RELOAD_KEY = "actionkit:reloaded";

  const script = document.currentScript;
  const exposed = JSON.parse((script && script.dataset.actions) || "{}");

  // Per-form state: pending submissions, ordering, the abort controller of the latest one.
  const forms = new WeakMap();
  // Forms sent natively once after a network failure: the interceptor lets them through.
  const native = new WeakSet();
  // Elements whose declarative call was already set up (morphing keeps element identity).
  const wired = new WeakSet();

  const pagePath = () => location.pathname + location.search;

  class ActionError extends Error {
    constructor(message, { status = 0, code = "network", answer = null } = {}) {
      super(message);
      this.name = "ActionError";
      this.status = status;
      this.code = code;
      this.answer = answer;
    }
  }

  // -- talking to the server ------------------------------------------------------------------

  // XMLHttpRequest rather than fetch: it reports upload progress.
  function send(url, headers, body, { signal, onProgress } = {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("Accept", "application/json");
      if (onProgress) {
        xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
      }
      xhr.addEventListener("load", () => {
        let answer = null;
        try {
          answer = JSON.parse(xhr.responseText);
        } catch (_) {
          // Not our answer (a proxy's error page): reported below as an error without a body.
        }
        resolve({ status: xhr.status, answer });
      });
      xhr.addEventListener("error", () => reject(new ActionError("Network error")));
      xhr.addEventListener("abort", () => reject(new DOMException("Aborted", "AbortError")));
      if (signal) signal.addEventListener("abort", () => xhr.abort());
      xhr.send(body);
    });
  }

  // An error answer: after a deploy the page may name actions the server no longer has; reload
  // the page once to get the new IDs.
  function failure(status, answer) {
    const code = (answer && answer.error && answer.error.code) || "http_" + status;
    if (code === UNKNOWN_ACTION) {
      const last = Number(sessionStorage.getItem(RELOAD_KEY) || 0);
      if (Date.now() - last > 10000) {
        sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
        location.reload();
      }
    }
    const message = (answer && answer.error && answer.error.message) || "Action failed";
    return new ActionError(message, { status, code, answer });
  }

  // -- applying an answer ---------------------------------------------------------------------

  function morph(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    if (doc.title) document.title = doc.title;
    // Attributes of <html> (a theme, the language) belong to the page too.
    const root = document.documentElement;
    for (const { name } of [...root.attributes]) {
      if (!doc.documentElement.hasAttribute(name)) root.removeAttribute(name);
    }
    for (const { name, value } of doc.documentElement.attributes) {
      if (root.getAttribute(name) !== value) root.setAttribute(name, value);
    }
    const x = window.scrollX;
    const y = window.scrollY;
    // ignoreActiveValue keeps what the user is typing; restoreFocus keeps focus and caret.
    Idiomorph.morph(document.body, doc.body, {
      morphStyle: "outerHTML",
      ignoreActiveValue: true,
      restoreFocus: true,
    });
    window.scrollTo(x, y);
    wireCalls(document);
  }

  // Follows a redirect or shows the page re-rendered after the action.
  function apply(answer) {
    if (answer.redirect) {
      const target = new URL(answer.redirect.url, location.href);
      if (target.origin !== location.origin || answer.html == null) {
        location.assign(target.href);
        return;
      }
      const method = answer.redirect.type === "replace" ? "replaceState" : "pushState";
      history[method]({ actionkit: true }, "", target.href);
      morph(answer.html);
      window.scrollTo(0, 0);
      return;
    }
    if (answer.html != null) morph(answer.html);
  }

  // -- pending state --------------------------------------------------------------------------

  function setPending(form, submitter) {
    for (const el of [form, submitter]) {
      if (!el) continue;
      el.setAttribute("aria-busy", "true");
      el.setAttribute("data-pending", "");
    }
    if (submitter) {
      submitter.disabled = true;
      const text = submitter.dataset.pendingText;
      if (text != null) {
        submitter.dataset.actionkitText = submitter.textContent;
        submitter.textContent = text;
      }
    }
  }

  function clearPending(form, submitter) {
    for (const el of [form, submitter]) {
      if (!el) continue;
      el.removeAttribute("aria-busy");
      el.removeAttribute("data-pending");
    }
    if (submitter) {
      submitter.disabled = false;
      if (submitter.dataset.actionkitText != null) {
        submitter.textContent = submitter.dataset.actionkitText;
        delete submitter.dataset.actionkitText;
      }
    }
  }

  // Optimistic UI: elements marked data-optimistic="<field>" show the submitted value at once.
  function optimistic(form, data) {
    const undo = [];
    for (const el of form.querySelectorAll("[data-optimistic]")) {
      const value = data.get(el.dataset.optimistic);
      if (value == null || typeof value !== "string") continue;
      undo.push([el, el.textContent]);
      el.textContent = value;
    }
    return () => {
      for (const [el, text] of undo) el.textContent = text;
    };
  }

  function emit(target, name, detail) {
    (target.isConnected ? target : document).dispatchEvent(
      new CustomEvent("actionkit:" + name, { bubbles: true, detail }),
    );
  }

  // -- forms ----------------------------------------------------------------------------------

  function actionOf(data) {
    let id = null;
    for (const [name] of data) {
      if (name.startsWith(ACTION_FIELD_PREFIX)) id = name.slice(ACTION_FIELD_PREFIX.length);
    }
    return id; // the last one wins: the clicked button's name comes after the hidden field
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const submitter = event.submitter || null;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    if (native.has(form)) {
      native.delete(form);
      return;
    }
    const method = (
      (submitter && submitter.getAttribute("formmethod")) ||
      form.getAttribute("method") ||
      "get"
    ).toLowerCase();
    if (method !== "post") return;
    const data = new FormData(form, submitter);
    const id = actionOf(data);
    if (id == null) return;
    event.preventDefault();
    submit(form, submitter, data, id);
  });

  function submit(form, submitter, data, id) {
    let state = forms.get(form);
    if (!state) {
      state = { pending: 0, sent: 0, applied: 0, controller: null, queue: Promise.resolve() };
      forms.set(form, state);
    }
    const mode = form.dataset.concurrency || "queue";
    if (mode === "drop" && state.pending > 0) return;
    if (mode === "abort" && state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const number = ++state.sent;
    state.pending += 1;
    setPending(form, submitter);
    const rollback = optimistic(form, data);
    const run = () => send_form(form, submitter, data, id, number, state, controller, rollback);
    state.queue = mode === "queue" ? state.queue.then(run, run) : run();
  }

  async function send_form(form, submitter, data, id, number, state, controller, rollback) {
    const url = (submitter && submitter.hasAttribute("formaction") && submitter.formAction) ||
      form.action || location.href;
    const progress = form.querySelector("progress[data-upload-progress]");
    const hasFiles = [...data.values()].some((v) => v instanceof File && v.size > 0);
    const onProgress = hasFiles
      ? (loaded, total) => {
          if (progress) {
            progress.max = total;
            progress.value = loaded;
          }
          emit(form, "progress", { loaded, total });
        }
      : null;
    const headers = { [ACTION_ID_HEADER]: id, [ACTION_PAGE_HEADER]: pagePath() };
    try {
      const { status, answer } = await send(url, headers, data, {
        signal: controller.signal,
        onProgress,
      });
      state.pending -= 1;
      if (state.pending === 0) clearPending(form, submitter);
      else if (submitter) clearPending(null, submitter);
      // Never apply an answer older than one already applied.
      if (number < state.applied) return;
      state.applied = number;
      if (!answer || answer.error || !("result" in answer)) {
        rollback();
        const error = failure(status, answer);
        emit(form, "error", { error, status, answer });
        return;
      }
      if (answer.failed) {
        rollback();
        // A failed submission never loses what the user typed, even if the page rendered
        // after it does not echo the values back.
        const typed = [...form.elements]
          .filter((el) => "value" in el && !["file", "hidden", "submit", "button"].includes(el.type))
          .map((el) => [el, el.value]);
        apply(answer);
        for (const [el, value] of typed) if (el.isConnected) el.value = value;
      } else {
        apply(answer);
      }
      if (!answer.failed && !answer.redirect && form.dataset.reset !== "false") form.reset();
      emit(form, "result", answer);
    } catch (error) {
      state.pending -= 1;
      if (state.pending === 0) clearPending(form, submitter);
      rollback();
      if (error.name === "AbortError") return;
      emit(form, "error", { error, status: 0, answer: null });
      // The network failed (offline, server restarting): submit natively once.
      if (form.isConnected && !form.dataset.actionkitRetried) {
        form.dataset.actionkitRetried = "true";
        native.add(form);
        if (submitter && submitter.isConnected) form.requestSubmit(submitter);
        else form.requestSubmit();
      }
    }
  }

  // -- calls from scripts ---------------------------------------------------------------------

  async function call(idOrName, ...args) {
    const spec = exposed[idOrName] || { id: idOrName, token: "" };
    const headers = {
      [ACTION_ID_HEADER]: spec.id,
      [ACTION_PAGE_HEADER]: pagePath(),
      "Content-Type": "application/json",
    };
    if (spec.token) headers[ACTION_BOUND_HEADER] = spec.token;
    const { status, answer } = await send(location.href, headers, JSON.stringify(args));
    if (!answer || answer.error || !("result" in answer)) throw failure(status, answer);
    apply(answer);
    if (answer.failed) {
      throw new ActionError("Action failed", { status, code: "failed", answer });
    }
    return answer.result;
  }

  const actions = {};
  for (const name of Object.keys(exposed)) actions[name] = (...args) => call(name, ...args);

  // Declarative calls: <span data-action-call="increment_views" data-trigger="load"
  // data-args="[]" data-target="#views"> runs the action and writes its result into the target.
  function runCall(el) {
    let args = [];
    try {
      args = JSON.parse(el.dataset.args || "[]");
    } catch (_) {
      console.error("actionkit: data-args is not a JSON array", el);
      return;
    }
    el.setAttribute("aria-busy", "true");
    call(el.dataset.actionCall, ...args)
      .then((result) => {
        const selector = el.dataset.target;
        const target = selector ? document.querySelector(selector) : el;
        if (target && result !== undefined) {
          target.textContent = typeof result === "string" ? result : JSON.stringify(result);
        }
        emit(el, "result", { result });
      })
      .catch((error) => emit(el, "error", { error }))
      .finally(() => el.removeAttribute("aria-busy"));
  }

  let observer = null;
  function wireCalls(root) {
    for (const el of root.querySelectorAll("[data-action-call]")) {
      if (wired.has(el)) continue;
      wired.add(el);
      const trigger = el.dataset.trigger || "click";
      if (trigger === "load") runCall(el);
      else if (trigger === "click") el.addEventListener("click", () => runCall(el));
      else if (trigger === "visible") {
        observer =
          observer ||
          new IntersectionObserver((entries) => {
            for (const entry of entries) {
              if (!entry.isIntersecting) continue;
              observer.unobserve(entry.target);
              runCall(entry.target);
            }
          });
        observer.observe(el);
      }
    }
  }

  // -- navigation -----------------------------------------------------------------------------

  // Back/forward cache: a page restored with a submission in flight must not stay disabled.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    for (const el of document.querySelectorAll("[data-pending]")) {
      if (el instanceof HTMLFormElement) clearPending(el, null);
      else clearPending(null, el);
    }
  });

  // History entries made by redirects hold no page of their own: load it.
  window.addEventListener("popstate", (event) => {
    if (event.state && event.state.actionkit) location.reload();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => wireCalls(document));
  } else {
    wireCalls(document);
  }

  window.actionkit = Object.freeze({ call, actions, apply, ActionError, version: 1 });
})();
