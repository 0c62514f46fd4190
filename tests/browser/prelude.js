// Loaded before the client under test (the official one takes `WebSocket` when
// it loads): while window.holdProbes is true, the server's answer to an upgrade
// probe ("3probe") waits for window.releaseProbes(), so that a step can act
// while a socket is connected over polling and not yet upgrading.
(() => {
  const held = [];
  window.releaseProbes = () => held.splice(0).forEach((deliver) => deliver());
  class HeldProbes extends WebSocket {
    get onmessage() {
      return super.onmessage;
    }
    set onmessage(fn) {
      super.onmessage =
        fn &&
        ((ev) => {
          if (window.holdProbes && ev.data === "3probe") held.push(() => fn.call(this, ev));
          else fn.call(this, ev);
        });
    }
  }
  window.WebSocket = HeldProbes;
})();
