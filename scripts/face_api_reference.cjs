// Run face-api.js's FaceExpressionNet (tfjs CPU backend) on raw 112x112 RGB uint8 faces; print probabilities.
// Usage: node scripts/face_api_reference.cjs PACKAGE_DIR FACES.u8 COUNT > probabilities.json
// PACKAGE_DIR is the unpacked npm package @vladmandic/face-api 1.7.15 (with @tensorflow/tfjs 4.22.0 and
// @tensorflow/tfjs-backend-wasm 4.22.0 installed beside it); see scripts/face_api_reference.py.
const fs = require('fs');
const path = require('path');

async function main() {
  const [packageDir, facesPath, countText] = process.argv.slice(2);
  const faceapi = require(path.resolve(packageDir, 'dist', 'face-api.node-wasm.js'));
  const { tf } = faceapi;
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.resolve(packageDir, 'model');
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'face_expression_model-weights_manifest.json')));
  const shards = manifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
  const joined = Buffer.concat(shards);
  const buffer = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const weightMap = tf.io.decodeWeights(buffer, manifest.flatMap((group) => group.weights));
  const net = new faceapi.FaceExpressionNet();
  net.loadFromWeightMap(weightMap);

  const count = Number(countText);
  const faces = fs.readFileSync(facesPath);
  const side = 112;
  const size = side * side * 3;
  if (faces.length !== count * size) throw new Error(`expected ${count * size} bytes, got ${faces.length}`);
  const probabilities = [];
  for (let i = 0; i < count; i += 1) {
    const pixels = new Int32Array(faces.subarray(i * size, (i + 1) * size));
    const input = tf.tensor3d(pixels, [side, side, 3], 'int32');
    const output = await net.forward(input);
    probabilities.push(Array.from(output.dataSync()));
    input.dispose();
    output.dispose();
  }
  process.stdout.write(JSON.stringify({
    backend: tf.getBackend(), tfjs: tf.version_core, labels: faceapi.FACE_EXPRESSION_LABELS || null, probabilities,
  }));
}

main().catch((error) => { console.error(error); process.exit(1); });
