// The tracer's debug-toolbar panel (templates/tracer/panel.html): <tracer-panel>.
//
// The toolbar sets a panel's HTML with innerHTML inside its own shadow root, whose CSS
// reset (`#djDebug span { ... }`) outranks any class selector. So the element moves its
// content into a shadow root of its own, where tracer.css applies as in the app. It
// loads htmx once if the page has none (htmx resolves "#id" targets within the
// element's own root), processes the content, and follows the toolbar's light/dark
// theme. A custom element upgrades whenever it is connected, so it works whether this
// module loads before or after the toolbar's "djdt.panel.render" event.

let htmxLoading = null;

function loadHtmx(src) {
  if (window.htmx) {
    return Promise.resolve(window.htmx);
  }
  if (!htmxLoading) {
    htmxLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.htmx);
      script.onerror = () => {
        htmxLoading = null;
        reject(new Error(`tracer: could not load htmx from ${src}`));
      };
      document.head.appendChild(script);
    });
  }
  return htmxLoading;
}

class TracerPanel extends HTMLElement {
  connectedCallback() {
    if (!this.shadowRoot) {
      this.attachShadow({ mode: "open" }).append(...this.childNodes);
    }
    const panel = this.shadowRoot.querySelector(".tracer-panel");
    this.followTheme(panel);
    loadHtmx(this.dataset.htmx).then(
      (htmx) => htmx.process(panel),
      (error) => {
        const note = document.createElement("p");
        note.className = "tracer-notice";
        note.textContent = `${error.message}: statements do not open here; use the link to the tracer app.`;
        panel.prepend(note);
      },
    );
  }

  disconnectedCallback() {
    this.themeObserver?.disconnect();
  }

  followTheme(panel) {
    // #djDebug carries the toolbar's theme ("light" or "dark", also when the user
    // picks one against the system's); the panel's CSS keys on the same attribute.
    const toolbar = this.closest("#djDebug");
    if (!toolbar || !panel) {
      return;
    }
    const apply = () => {
      const theme = toolbar.dataset.theme;
      if (theme) {
        panel.dataset.theme = theme;
      } else {
        delete panel.dataset.theme;
      }
    };
    apply();
    this.themeObserver = new MutationObserver(apply);
    this.themeObserver.observe(toolbar, { attributes: true, attributeFilter: ["data-theme"] });
  }
}

if (!customElements.get("tracer-panel")) {
  customElements.define("tracer-panel", TracerPanel);
}
