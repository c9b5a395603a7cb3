// A scoring script with the cost of a small real model (S8.5): a two-layer perceptron
// (784 -> 1024 -> 10, ReLU, softmax) over a batch of 28x28 images, as a digits classifier
// would be served. The benchmark registers a model file of random weights (gateway-bench.ts);
// init() loads it from AZUREML_MODEL_DIR, run() classifies `input.instances`.
const fs = require('node:fs');
const path = require('node:path');

let layers;

exports.init = () => {
  const model = JSON.parse(fs.readFileSync(path.join(process.env.AZUREML_MODEL_DIR, 'mlp.json'), 'utf8'));
  layers = model.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, weights: Float64Array.from(l.weights), bias: Float64Array.from(l.bias) }));
};

const forward = (layer, x, relu) => {
  const y = new Float64Array(layer.outputs);
  for (let o = 0; o < layer.outputs; o++) {
    let sum = layer.bias[o];
    const row = o * layer.inputs;
    for (let i = 0; i < layer.inputs; i++) sum += layer.weights[row + i] * x[i];
    y[o] = relu && sum < 0 ? 0 : sum;
  }
  return y;
};

exports.run = (input) => {
  if (!input || !Array.isArray(input.instances)) throw new Error('expected { instances: number[][] }');
  return {
    predictions: input.instances.map((pixels) => {
      let x = Float64Array.from(pixels);
      layers.forEach((layer, i) => (x = forward(layer, x, i < layers.length - 1)));
      const max = Math.max(...x);
      const exp = x.map((v) => Math.exp(v - max));
      const total = exp.reduce((a, b) => a + b, 0);
      const label = exp.indexOf(Math.max(...exp));
      return { label, confidence: Math.round((exp[label] / total) * 1000) / 1000 };
    }),
  };
};
