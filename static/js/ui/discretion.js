// "Hide": swaps the app for a neutral screen at once (the draft is saved),
// and back again.

/** Wire the hide and unhide buttons. beforeHide() runs as the app is hidden. */
export function wireDiscretion({ appView, neutralView, neutralTitle, hideButton, unhideButton, beforeHide = () => {} }) {
  hideButton.addEventListener("click", () => {
    beforeHide();
    appView.hidden = true;
    neutralView.hidden = false;
    neutralTitle.setAttribute("tabindex", "-1");
    neutralTitle.focus();
  });
  unhideButton.addEventListener("click", () => {
    neutralView.hidden = true;
    appView.hidden = false;
    hideButton.focus();
  });
}
