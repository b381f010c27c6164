// Entry for the bundled HPKE library (npm run build -> static/vendor/hpke.js):
// the suite and the P-256 KEM of envelope version 1.
export { CipherSuite, DhkemP256HkdfSha256, HkdfSha256, Aes256Gcm } from "@hpke/core";
