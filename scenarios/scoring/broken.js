// A broken scoring script: a syntax error the image build must report.
exports.init = () => {};
exports.run = (input) => { return { echo: input ;
