// "Hide": swaps the app for a neutral screen at once (the draft is saved),
// and back again. Hidden stays hidden across a reload or a relaunch (the
// system may close a background app): the app opens on the neutral screen
// until "Back" is tapped. The flag says nothing of the note.
const HIDDEN_KEY = "cabin-notes-hidden";

function keepHidden(hidden) {
  try {
    if (hidden) localStorage.setItem(HIDDEN_KEY, "1");
    else localStorage.removeItem(HIDDEN_KEY);
  } catch {
    /* without storage, a reload shows the app */
  }
}

function wasHidden() {
  try {
    return localStorage.getItem(HIDDEN_KEY) === "1";
  } catch {
    return false;
  }
}

/** Wire the hide and unhide buttons. beforeHide() runs as the app is hidden. */
export function wireDiscretion({ appView, neutralView, neutralTitle, hideButton, unhideButton, beforeHide = () => {} }) {
  const show = (hidden) => {
    appView.hidden = hidden;
    neutralView.hidden = !hidden;
  };
  hideButton.addEventListener("click", () => {
    beforeHide();
    show(true);
    keepHidden(true);
    neutralTitle.setAttribute("tabindex", "-1");
    neutralTitle.focus();
  });
  unhideButton.addEventListener("click", () => {
    show(false);
    keepHidden(false);
    hideButton.focus();
  });
  if (wasHidden()) show(true);
}
