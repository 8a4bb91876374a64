/* VOE player loader (the shape of the part a client reads; the real bundle is minified and much longer) */
(function () {
    var _0x1c2b = [__JUNK__];
    function _0x4d1e(s) {
        for (var i = 0; i < _0x1c2b.length; i++) { s = s.split(_0x1c2b[i]).join("_"); }
        return s.split("_").join("");
    }
    window.__voe_decode = function (v) { return _0x4d1e(v); };
})();
