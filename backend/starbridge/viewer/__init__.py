"""The browser viewer: a web page served by the backend that flies through any scene (`starbridge serve` prints
its URL). `gateway` serves the page and maps its WebSocket messages onto the session manager (`messages`,
`frames`); `api` answers the page's scene and generator lists; `static/` is the page (plain HTML and JavaScript
modules, no build step)."""
