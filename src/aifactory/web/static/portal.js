// The portal's own script, kept small: pages work without it; htmx does the live parts.
"use strict";

// After htmx swaps in a fragment that holds a log, keep the newest lines in view
// (unless the reader scrolled up to read older ones).
document.addEventListener("htmx:beforeSwap", (event) => {
  const log = event.detail.target.querySelector && event.detail.target.querySelector("pre.log");
  if (log) {
    event.detail.target.dataset.follow =
      log.scrollTop + log.clientHeight >= log.scrollHeight - 8 ? "yes" : "no";
  }
});
document.addEventListener("htmx:afterSwap", (event) => {
  const log = event.detail.target.querySelector && event.detail.target.querySelector("pre.log");
  if (log && event.detail.target.dataset.follow !== "no") {
    log.scrollTop = log.scrollHeight;
  }
});

// A form button marked data-confirm asks before it posts (cancel a job, award…).
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
