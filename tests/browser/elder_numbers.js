// The elder-friendly numbers of the page as Chromium draws it (tests/browser/conftest.py reads them):
// body font size and line height; for every visible element with text of its own, its font size and the
// contrast of its colour on the colours behind it; the size of every control in <main> (a radio button or
// check box is measured by its label, which is what a finger taps).
() => {
  const visible = el => {
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 1 && r.height > 1;
  };
  const rgba = text => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map(i => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '') +
    ' "' + (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30) + '"';
  const body = getComputedStyle(document.body);
  const texts = [], targets = [];
  for (const el of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'svg', 'path', 'rect'].includes(el.tagName) || !visible(el)) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (own) {
      const s = getComputedStyle(el);
      const fg = over(rgba(s.color), background(el));
      texts.push({el: name(el), size: parseFloat(s.fontSize), ratio: contrast(fg, background(el)),
                  main: el.closest('main') !== null});
    }
  }
  for (const el of document.querySelectorAll('main a[href], main button, main input, main select, main textarea')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    let box = el;
    if (el.type === 'radio' || el.type === 'checkbox') box = el.closest('label') || document.querySelector(`label[for="${el.id}"]`) || el;
    const r = box.getBoundingClientRect();
    targets.push({el: name(el), width: r.width, height: r.height});
  }
  return {
    large: document.documentElement.classList.contains('large-text'),
    fontSize: parseFloat(body.fontSize),
    lineHeight: body.lineHeight === 'normal' ? 0 : parseFloat(body.lineHeight),
    texts, targets,
  };
}
