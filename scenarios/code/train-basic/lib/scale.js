exports.scale = (value, factor) => value * factor;
