// Allocates beyond the node's memory limit (S4.6 node sizes): the container is OOM-killed.
const hog = [];
for (let i = 0; i < 4096; i++) {
  const b = Buffer.alloc(1024 * 1024);
  b.fill(i & 255); // touch every page so the memory really counts
  hog.push(b);
}
console.log(`allocated ${hog.length} MiB without being stopped`);
