// Entry for the bundled HPKE library (npm run build -> static/vendor/hpke.js).
export { CipherSuite, DhkemP256HkdfSha256, HkdfSha256, Aes256Gcm } from "@hpke/core";
