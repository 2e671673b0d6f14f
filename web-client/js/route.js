// route.js — index.html is what testigod serves at "/" and, when no page of
// its own is configured, at /join/{token}: send each to its page. The token
// moves into the fragment, which browsers never send to a server.
const m = location.pathname.match(/^\/join\/([A-Za-z0-9_-]{16,128})\/?$/);
if (m) location.replace(`/signatory.html#${m[1]}`);
else location.replace('/officer.html');
