// The chat box of an endpoint's page (web/pages/inference.py): one question to the facility's
// own OpenAI-compatible gateway (/v1, this origin) with an inference key pasted into the page.
// The key is read from its field when a question is sent and kept nowhere else: not in storage,
// not in a URL, never sent to the portal's own routes; no cookie goes with the call either.
"use strict";

(() => {
  const form = document.getElementById("chat");
  if (!form) {
    return;
  }
  const key = document.getElementById("chat-key");
  const prompt = document.getElementById("chat-prompt");
  const send = document.getElementById("chat-send");
  const error = document.getElementById("chat-error");
  const answer = document.getElementById("chat-answer");
  const text = document.getElementById("chat-text");
  const usage = document.getElementById("chat-usage");
  form.hidden = false; // the box needs this script: without it, it stays hidden

  function show(message) {
    error.textContent = message;
    error.hidden = false;
    answer.hidden = true;
  }

  // The gateway's errors are the OpenAI API's: {"error": {"message", "type", "code"}}.
  function refusal(status, body) {
    const message = body && body.error && body.error.message;
    return `${status}: ${message || "the gateway answered without a message"}`;
  }

  async function ask() {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Authorization": `Bearer ${key.value.trim()}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: form.dataset.model,
        messages: [{ role: "user", content: prompt.value }],
        max_tokens: 64,
      }),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null; // not JSON: said below with the status
    }
    if (!response.ok) {
      show(refusal(response.status, body));
      return;
    }
    const choice = body && body.choices && body.choices[0];
    text.textContent = (choice && choice.message && choice.message.content) || "";
    const used = (body && body.usage) || {};
    usage.textContent =
      `${used.prompt_tokens ?? "?"} prompt tokens, ${used.completion_tokens ?? "?"} completion tokens`;
    error.hidden = true;
    answer.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!key.value.trim()) {
      show("Paste an inference key of the project first.");
      key.focus();
      return;
    }
    send.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await ask();
    } catch (failure) {
      show(`The gateway could not be reached: ${failure.message}`);
    } finally {
      send.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
})();
