import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLabel, drawLabel, LABEL_TEXT, syntheticMetadata } from '../src/compose/label.js';
import type { RgbImage } from '../src/types.js';

function grey(width: number, height: number, level = 128): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(level) };
}

describe('AI-generated label', () => {
  test('sits in the bottom-right corner, about 3.5% of the frame height', async () => {
    const label = await createLabel(586, 586);
    assert.ok(label);
    const { box } = label;
    assert.equal(box.height, Math.round(586 * 0.035));
    assert.ok(box.x + box.width < 586 && box.y + box.height < 586, 'inside the frame');
    assert.ok(box.x > 586 / 2 && box.y > 586 * 0.9, `bottom-right: ${JSON.stringify(box)}`);
    const large = await createLabel(1920, 1080);
    assert.ok(large && large.box.height === Math.round(1080 * 0.035) && large.box.width > label.box.width);
  });

  test('touches only its box, with a dark backing and light letters', async () => {
    const frame = grey(640, 360);
    const label = (await createLabel(640, 360))!;
    drawLabel(frame, label);
    const { box } = label;
    let darker = 0;
    let lighter = 0;
    for (let y = 0; y < frame.height; y++) {
      for (let x = 0; x < frame.width; x++) {
        const value = frame.data[(y * frame.width + x) * 3]!;
        const inside = x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;
        if (!inside) assert.equal(value, 128, `pixel ${x},${y} outside the label changed`);
        else if (value < 100) darker++;
        else if (value > 170) lighter++;
      }
    }
    const area = box.width * box.height;
    // Most of the box is the semi-transparent backing; the strokes are a visible minority.
    assert.ok(darker > area * 0.4, `backing covers ${darker}/${area}`);
    assert.ok(lighter > area * 0.08 && lighter < area * 0.5, `letters cover ${lighter}/${area}`);
  });

  test('the backing is semi-transparent: the picture shows through', async () => {
    const black = grey(400, 400, 0);
    const white = grey(400, 400, 255);
    const label = (await createLabel(400, 400))!;
    drawLabel(black, label);
    drawLabel(white, label);
    // A backing pixel (top-left corner of the box, inside the rounded corner radius) differs by background.
    const p = ((label.box.y + Math.floor(label.box.height / 2)) * 400 + label.box.x + 3) * 3;
    assert.ok(white.data[p]! - black.data[p]! > 60, `${white.data[p]} vs ${black.data[p]}`);
  });

  test('frames too small to hold it legibly get none', async () => {
    assert.equal(await createLabel(64, 64), undefined);
  });

  test('metadata says the video is AI-generated', () => {
    const tags = syntheticMetadata({ model: 'mesh' });
    assert.match(tags.comment!, /AI-generated/);
    assert.match(tags.description!, /AI-generated/);
    assert.match(tags.comment!, /mesh/);
    assert.equal(LABEL_TEXT, 'AI-generated');
  });
});
