// A scoring script that needs an npm package (S8.5): built with `dependencies: [ms@2.1.3]`,
// `ms` is installed into the image's /node_modules and require() finds it in a replica with no
// network; built without, the image's scoring-script check fails with "Cannot find module 'ms'".
const ms = require('ms');
exports.init = () => {};
exports.run = (input) => ({ ms: ms(String(input.duration ?? '1m')) });
