"""The Subsonic / OpenSubsonic API at /rest (SPEC 13), for the phone and desktop apps that speak
it. `endpoint` answers every request under /rest; `auth` decides who calls (app passwords only);
`envelope` writes one data structure as XML, JSON or JSONP; `params` reads typed parameters;
`registry` is where methods plug in — its docstring is the contract for adding one; `shapes`
builds the reference's shapes from Sonora's rows; `system`, `users`, `browsing` are the methods."""
