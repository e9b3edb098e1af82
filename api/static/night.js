// Runs before the first paint (a plain script in <head>, not inline: the page is served
// under a Content-Security-Policy): the screen mode chosen last, so a dim room never sees a flash.
try {
  if (localStorage.getItem("roomctl.night") === "1") document.documentElement.classList.add("night");
} catch (e) { /* private mode: day colours */ }
