// Entry for the bundled HPKE library (npm run build -> static/vendor/hpke.js):
// the P-256 KEM of envelope version 1 and the X-Wing KEM of version 2.
export { CipherSuite, DhkemP256HkdfSha256, HkdfSha256, Aes256Gcm } from "@hpke/core";
export { XWing } from "@hpke/hybridkem-x-wing";
