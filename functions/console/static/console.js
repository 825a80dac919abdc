// Palisade console: the little the pages need beyond HTML. No inline
// script, no DOM strings (the CSP forbids both).
(function () {
  "use strict";

  // Filters apply as soon as a choice changes.
  document.querySelectorAll("form.filters select").forEach(function (sel) {
    sel.addEventListener("change", function () {
      if (sel.form.requestSubmit) {
        sel.form.requestSubmit();
      } else {
        sel.form.submit();
      }
    });
  });

  // Copy buttons copy the text of the <pre> beside them.
  document.querySelectorAll(".copyable button.copy").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var pre = btn.parentElement.querySelector("pre");
      var done = function () {
        btn.textContent = "Copied";
        window.setTimeout(function () { btn.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(pre.textContent).then(done, function () { btn.textContent = "Select and copy"; });
      } else {
        var range = document.createRange();
        range.selectNodeContents(pre);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        btn.textContent = "Selected: press Ctrl+C";
      }
    });
  });

  // The page is usable: its handlers are in place.
  document.documentElement.dataset.ready = "1";
  if (window.performance && performance.mark) {
    performance.mark("palisade-ready");
  }
})();
