// ESLint over the browser code: the crew app and officers' pages (static/js)
// and the crew app's service worker (templates/crew/sw.js, a Jinja template).
// Run by tests/js/test_eslint.py inside `make test`.
"use strict";

const js = require("@eslint/js");
const stylistic = require("@stylistic/eslint-plugin");
const globals = require("globals");

// The service worker is rendered by Flask; its only Jinja is values injected
// as JSON (`{{ value|tojson }}`). Each is linted as `null` of the same length,
// so positions stay true; any other Jinja is left in and fails to parse.
const jinjaJson = {
  meta: { name: "jinja-tojson" },
  preprocess(text) {
    return [text.replace(/\{\{[^{}]*\|\s*tojson\s*\}\}/g, (m) => "null".padEnd(m.length, " "))];
  },
  postprocess(messages) {
    return messages.flat();
  },
  supportsAutofix: false,
};

const rules = {
  ...js.configs.recommended.rules,
  "no-unused-vars": ["error", { ignoreRestSiblings: true }],
  "@stylistic/quotes": ["error", "double", { avoidEscape: true }],
  "@stylistic/semi": ["error", "always"],
};

module.exports = [
  { ignores: ["node_modules/", "static/vendor/", ".venv/", "build/", "dist/", "instance/"] },
  {
    files: ["static/js/**/*.js"],
    plugins: { "@stylistic": stylistic },
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser } },
    rules,
  },
  {
    files: ["templates/crew/sw.js"],
    processor: jinjaJson,
    plugins: { "@stylistic": stylistic },
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.serviceworker } },
    rules,
  },
  {
    files: ["eslint.config.js"],
    plugins: { "@stylistic": stylistic },
    languageOptions: { sourceType: "commonjs", globals: { ...globals.node } },
    rules,
  },
];
