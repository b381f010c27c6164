// Entry for the bundled X-Wing KEM of envelope version 2 (npm run build ->
// static/vendor/xwing.js), kept apart from hpke.js: it is the post-quantum
// part that the shell's wire budget counts on top (crewreport/crew.py).
export { XWing } from "@hpke/hybridkem-x-wing";
