// Progressive enhancement only: every page works without this file.
// - [data-copy=ID]: a button that copies the text of element ID.
// - [data-confirm=TEXT]: a submit button that asks first.
// - .js-only: shown only when this script runs.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(
        () => { copy.textContent = "Copied"; },
        () => { copy.textContent = "Select and copy"; },
      );
    }
    return;
  }
  const confirmable = event.target.closest("[data-confirm]");
  if (confirmable && !window.confirm(confirmable.dataset.confirm)) {
    event.preventDefault();
  }
});
