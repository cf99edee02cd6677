// Pinned SHA-256 sums of the fixture photos (each model's own are in its module,
// mobilenet-v1.ts and mobilenet-v2.ts). Every downloaded or mirrored file is checked
// against these before it is used.

export const FIXTURES_BASE_URL =
  'https://raw.githubusercontent.com/scikit-image/scikit-image/v0.19.3/skimage/data/';

export const FIXTURE_SHA256: Readonly<Record<string, string>> = Object.freeze({
  'astronaut.png': '88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5',
  'camera.png': 'b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a',
  'chelsea.png': '596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb',
  'coffee.png': 'cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7',
  'motorcycle_left.png': 'db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179',
  'rocket.jpg': 'c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c',
});
