// The comments page: a few lines of fetch() over the example app's API.
// Every request goes to the server; what the page shows is what it answered.
"use strict";

(function () {
  const byId = (id) => document.getElementById(id);
  const list = byId("comments");
  const summary = byId("summary");
  const errorBox = byId("error");
  const search = byId("search");
  const addForm = byId("add-form");
  const newText = byId("new-text");
  const themeValue = byId("theme-value");
  const themeToggle = byId("theme-toggle");
  const commentTemplate = byId("comment-template");
  const editTemplate = byId("edit-template");
  let loadCounter = 0;

  // One place that talks to the API: the server's {"error": ...} becomes the
  // message of the thrown Error, so no failure goes unseen.
  async function api(method, url, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error("Could not reach the server.");
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      try {
        data = await response.json();
      } catch (err) {
        data = null;
      }
    }
    if (!response.ok) {
      const reason = data && typeof data.error === "string" ? data.error : response.statusText;
      throw new Error(reason || "HTTP " + response.status);
    }
    return data;
  }

  // `fromLoad`: a failed reload, which the next successful one clears.
  function showError(action, err, fromLoad = false) {
    errorBox.textContent = action + ": " + err.message;
    errorBox.dataset.fromLoad = String(fromLoad);
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  function currentQuery() {
    return search.value.trim();
  }

  function renderComment(comment) {
    const item = commentTemplate.content.firstElementChild.cloneNode(true);
    item.dataset.id = String(comment.id);
    item.querySelector(".comment-id").textContent = "#" + comment.id;
    const text = item.querySelector(".comment-text");
    text.textContent = comment.text;
    text.id = "comment-text-" + comment.id;
    for (const button of item.querySelectorAll(".actions button")) {
      button.setAttribute("aria-describedby", text.id);
    }
    return item;
  }

  function render(comments, query) {
    list.replaceChildren(...comments.map(renderComment));
    const count = comments.length + (comments.length === 1 ? " comment" : " comments");
    if (query) {
      summary.textContent = comments.length
        ? count + " matching “" + query + "”"
        : "No comment matches “" + query + "”";
    } else {
      summary.textContent = comments.length ? count : "No comments yet: add the first one.";
    }
    list.dataset.loaded = "true";
  }

  async function load() {
    const query = currentQuery();
    const ticket = ++loadCounter;
    const url = query ? "/comments?query=" + encodeURIComponent(query) : "/comments";
    list.setAttribute("aria-busy", "true");
    try {
      const comments = await api("GET", url);
      if (ticket !== loadCounter) return; // a newer search has started
      render(comments, query);
      if (errorBox.dataset.fromLoad === "true") clearError();
      history.replaceState(null, "", query ? "?query=" + encodeURIComponent(query) : location.pathname);
    } catch (err) {
      if (ticket === loadCounter) showError("Could not load the comments", err, true);
    } finally {
      if (ticket === loadCounter) list.removeAttribute("aria-busy");
    }
  }

  async function busy(button, work) {
    button.disabled = true;
    try {
      await work();
    } finally {
      button.disabled = false;
    }
  }

  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(byId("add-button"), async () => {
      try {
        const comment = await api("POST", "/comments", { text: newText.value });
        clearError();
        newText.value = "";
        await load();
        const item = list.querySelector('[data-id="' + comment.id + '"]');
        if (item) item.classList.add("fresh");
      } catch (err) {
        showError("Could not add the comment", err);
      }
      newText.focus();
    });
  });

  let searchTimer = 0;
  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    load();
  });
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(load, 250);
  });

  function startEdit(item) {
    const text = item.querySelector(".comment-text");
    const form = editTemplate.content.firstElementChild.cloneNode(true);
    const input = form.querySelector(".edit-input");
    input.value = text.textContent;
    input.id = "edit-" + item.dataset.id;
    form.querySelector("label").htmlFor = input.id;
    item.classList.add("editing");
    item.querySelector(".actions").hidden = true;
    text.hidden = true;
    text.after(form);
    input.focus();
    input.select();
  }

  function stopEdit(item) {
    const form = item.querySelector(".edit-form");
    if (form) form.remove();
    item.classList.remove("editing");
    item.querySelector(".comment-text").hidden = false;
    item.querySelector(".actions").hidden = false;
  }

  async function saveEdit(item) {
    const input = item.querySelector(".edit-input");
    try {
      const comment = await api("PATCH", "/comments/" + item.dataset.id, { text: input.value });
      clearError();
      item.querySelector(".comment-text").textContent = comment.text;
      stopEdit(item);
      item.querySelector('[data-action="edit"]').focus();
    } catch (err) {
      showError("Could not save the comment", err);
      input.focus();
    }
  }

  async function remove(item) {
    // Where keyboard focus goes once the item is gone: the next comment, else
    // the one before, else the new-comment field (never the top of the page).
    const neighbour = item.nextElementSibling || item.previousElementSibling;
    const neighbourId = neighbour ? neighbour.dataset.id : null;
    try {
      await api("DELETE", "/comments/" + item.dataset.id);
      clearError();
      await load();
      const next = neighbourId && list.querySelector('[data-id="' + neighbourId + '"] [data-action="delete"]');
      (next || newText).focus();
    } catch (err) {
      showError("Could not delete the comment", err);
    }
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest("li[data-id]");
    const action = button.dataset.action;
    if (action === "edit") startEdit(item);
    else if (action === "cancel") stopEdit(item);
    else if (action === "delete") busy(button, () => remove(item));
  });
  list.addEventListener("submit", (event) => {
    event.preventDefault();
    const item = event.target.closest("li[data-id]");
    busy(event.target.querySelector('[data-action="save"]'), () => saveEdit(item));
  });
  list.addEventListener("keydown", (event) => {
    // Enter saves, as in the one-line field; Shift+Enter is a new line. Not
    // while an input method composes a word (Enter confirms it there), nor
    // while a save is under way (requestSubmit ignores the disabled button).
    const composing = event.isComposing || event.keyCode === 229;
    if (event.key === "Enter" && !event.shiftKey && !composing && event.target.classList.contains("edit-input")) {
      event.preventDefault();
      const form = event.target.form;
      if (!form.querySelector('[data-action="save"]').disabled) form.requestSubmit();
    }
    if (event.key === "Escape" && event.target.classList.contains("edit-input")) {
      const item = event.target.closest("li[data-id]");
      stopEdit(item);
      item.querySelector('[data-action="edit"]').focus();
    }
  });

  // The theme cookie of the tutorial's cookies lesson: /profile/api sets
  // theme=dark on the server side, and the toggle sets it from the page.
  function readCookie(name) {
    for (const pair of document.cookie.split(";")) {
      const at = pair.indexOf("=");
      if (at > 0 && pair.slice(0, at).trim() === name) {
        try {
          return decodeURIComponent(pair.slice(at + 1).trim());
        } catch (err) {
          return null; // not percent-encoded properly: unreadable, as the server skips it too
        }
      }
    }
    return null;
  }

  function showTheme() {
    const theme = readCookie("theme");
    const dark = theme === "dark";
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    themeValue.textContent = theme === null ? "not set" : theme;
    // A toggle button keeps its name; aria-pressed says whether it is on.
    themeToggle.setAttribute("aria-pressed", String(dark));
  }

  themeToggle.addEventListener("click", () => {
    const next = readCookie("theme") === "dark" ? "light" : "dark";
    document.cookie = "theme=" + next + "; Path=/; Max-Age=31536000; SameSite=Lax";
    showTheme();
  });

  byId("theme-server").addEventListener("click", async () => {
    try {
      const response = await fetch("/profile/api", { headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      clearError();
    } catch (err) {
      showError("Could not ask the server for a theme", err);
    }
    showTheme();
  });

  search.value = new URLSearchParams(location.search).get("query") || "";
  showTheme();
  load();
})();
