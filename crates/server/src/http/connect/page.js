(function () {
  "use strict";
  // Filled in by the server (JSON, `<` escaped): the outcome for the opener, and the one
  // origin it may go to (null: tell no one).
  var outcome = __OUTCOME__;
  var origin = __ORIGIN__;
  document.getElementById("close").addEventListener("click", function () {
    window.close();
  });
  if (outcome !== null && origin !== null && window.opener) {
    // Only the configured origin, never the wildcard: a foreign opener learns nothing.
    window.opener.postMessage(outcome, origin);
    window.close();
  }
})();
