// Small DOM helpers shared by the crew app's UI parts.

/** Build an element: el("p", {class: "hint", "data-x": "1"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** The phone number a `tel:` link dials: digits and "+" only. */
export function telHref(hotline) {
  return `tel:${hotline.replace(/[^0-9+]/g, "")}`;
}

/** ": <number>." as a tap-to-call link, or just "." when there is no hotline. */
export function hotlineLink(hotline) {
  return hotline ? [": ", el("a", { href: telHref(hotline) }, hotline), "."] : ["."];
}
