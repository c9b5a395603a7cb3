/**
 * Where the simulated Azure regions are, for S1.6: getting a web-service token calls the
 * workspace's region, and the distance to the cluster's region adds directly to how long it
 * takes. Latency is a round trip at about 200 km per millisecond (light in fibre).
 */
const COORDINATES: Readonly<Record<string, readonly [number, number]>> = {
  eastus: [37.37, -79.82],
  eastus2: [36.68, -78.39],
  westus: [37.78, -122.42],
  westus2: [47.23, -119.85],
  centralus: [41.59, -93.6],
  northeurope: [53.35, -6.26],
  westeurope: [52.37, 4.9],
  uksouth: [50.94, -0.8],
  francecentral: [46.38, 2.37],
  germanywestcentral: [50.11, 8.68],
  japaneast: [35.68, 139.77],
  australiaeast: [-33.86, 151.21],
  southeastasia: [1.28, 103.83],
  canadacentral: [43.65, -79.38],
  brazilsouth: [-23.55, -46.63],
};

export const distanceKm = (a: string, b: string): number => {
  const p = COORDINATES[a];
  const q = COORDINATES[b];
  if (!p || !q || a === b) return 0;
  const rad = Math.PI / 180;
  const dLat = (q[0] - p[0]) * rad;
  const dLon = (q[1] - p[1]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(p[0] * rad) * Math.cos(q[0] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(h));
};

/** The extra time a call from one region to the other takes (ms, rounded). */
export const crossRegionLatencyMs = (from: string, to: string): number => Math.round((2 * distanceKm(from, to)) / 200);
