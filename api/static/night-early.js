// Before the first paint: the screen mode the therapist chose last, so a dim room never sees a flash.
// A classic script loaded from the head (the CSP allows no inline script).
try {
  if (localStorage.getItem("roomctl.night") === "1") document.documentElement.classList.add("night");
} catch (e) { /* private mode */ }
