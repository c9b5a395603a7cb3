// Fails the way a real script fails: an exception, and a non-zero exit code.
console.log('loading data...');
console.error('ValueError: the training data has no label column');
process.exit(3);
