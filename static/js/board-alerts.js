// Alerts on the open flight board. When a refresh brings a report that is
// Immediate, involves a child, or is for a flight landing within the warning
// window, the board shows a banner naming the flight and its countdown and
// changes the page title; if the officer allowed it in this browser, a
// notification and a short sound too. The only thing stored is that choice
// ('on' under one localStorage key): no flight, report or name.

import { countdown } from "./triage.js";

const STORAGE_KEY = "crewreport.board.alerts";
const board = document.getElementById("queue");
const banner = document.getElementById("board-alert");
const optIn = document.querySelector("[data-alert-opt-in]");
const baseTitle = document.title;
let audio = null;

/** Why a newly arrived report deserves an alert, or '' when it does not. */
export function alertReason(report, flight, now = Date.now(), windowMinutes = 60) {
  const immediate = report.dataset.urgency === "immediate";
  const child = report.dataset.child === "true";
  if (immediate && child) return "Immediate report involving a child";
  if (immediate) return "Immediate report";
  if (child) return "Report involving a child";
  const ms = Date.parse(flight.dataset.sta) - now;
  if (ms >= 0 && ms <= windowMinutes * 60000) return "New report, landing soon";
  return "";
}

function allowed() {
  try {
    return localStorage.getItem(STORAGE_KEY) === "on";
  } catch {
    return false; // storage blocked: alerts stay silent
  }
}

function remember(on) {
  try {
    if (on) localStorage.setItem(STORAGE_KEY, "on");
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage blocked: the choice lasts for this page only */
  }
}

/** A short two-tone chime, made on the spot (no audio file to fetch). */
function chime() {
  if (!audio) audio = new AudioContext();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  const start = audio.currentTime;
  for (const [offset, freq] of [[0, 880], [0.18, 660]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.2, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.16);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.17);
  }
  banner.dataset.sounded = "true";
}

function notify(title, body) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  // The tag replaces an earlier alert instead of stacking them.
  new Notification(title, { body, tag: "crewreport-board", renotify: true });
  banner.dataset.notified = "true";
}

function show(alerts) {
  const [first] = alerts;
  const flight = first.flight;
  const name = flight.dataset.flight;
  const more = alerts.length > 1 ? ` (and ${alerts.length - 1} more)` : "";
  const { text } = countdown(flight.dataset.sta);
  banner.querySelector("[data-alert-text]").textContent = `${first.reason}: ${name}${more}`;
  const time = banner.querySelector("[data-alert-countdown]");
  time.setAttribute("datetime", flight.dataset.sta);
  time.textContent = text;
  banner.dataset.flight = name;
  banner.hidden = false;
  document.title = `(!) ${name} ${text} · ${baseTitle}`;
  if (allowed()) {
    notify(`${first.reason}: ${name}`, text);
    chime();
  }
}

function onRefresh(event) {
  const windowMinutes = Number(board.dataset.alertMinutes) || 60;
  const alerts = [];
  for (const id of event.detail.arrived) {
    const report = board.querySelector(`[data-report-id="${CSS.escape(id)}"]`);
    const flight = report && report.closest("[data-flight]");
    if (!flight) continue;
    const reason = alertReason(report, flight, Date.now(), windowMinutes);
    if (reason) alerts.push({ reason, flight });
  }
  if (alerts.length) show(alerts);
}

function dismiss() {
  banner.hidden = true;
  document.title = baseTitle;
}

async function choose() {
  remember(optIn.checked);
  if (!optIn.checked) return;
  // Asked only now, on the officer's own click: browsers allow both then.
  if ("Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
  if (!audio) audio = new AudioContext();
}

/** Browsers start sound only after a gesture on the page: the first click or
 * key after a reload readies it, so a later alert can chime. */
function readyAudio() {
  if (!allowed()) return;
  if (!audio) audio = new AudioContext();
  if (audio.state === "suspended") audio.resume().catch(() => {});
}

if (board && banner) {
  board.addEventListener("board:refreshed", onRefresh);
  document.addEventListener("pointerdown", readyAudio, { once: true });
  document.addEventListener("keydown", readyAudio, { once: true });
  banner.querySelector("[data-alert-dismiss]").addEventListener("click", dismiss);
  if (optIn) {
    optIn.checked = allowed();
    optIn.addEventListener("change", choose);
  }
}
