"use strict";
(function () {
  function submit() {
    var form = document.getElementById("form-post");
    if (form) {
      form.submit();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", submit);
  } else {
    submit();
  }
})();
