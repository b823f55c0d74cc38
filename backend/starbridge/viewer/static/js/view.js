// Drawing frames into the one canvas of the page: raw RGBA straight into a reused ImageData, JPEG / WebP
// through createImageBitmap; the coverage overlay tints the pixels no reference frame saw.

const TINT = [255, 0, 200, 120]; // magenta, about half opaque

export class View {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.image = null; // ImageData reused while the size stays
    this.overlay = document.createElement("canvas"); // the coverage tint, reused
    this.overlayCtx = this.overlay.getContext("2d");
    this.overlayImage = null;
    this.coverage = false;
    this.observedShare = null; // share of the last frame's pixels a reference frame saw, 0..1
  }

  resize(width, height) {
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    if (!this.image || this.image.width !== width || this.image.height !== height) {
      this.image = this.ctx.createImageData(width, height);
      this.overlay.width = width;
      this.overlay.height = height;
      this.overlayImage = this.overlayCtx.createImageData(width, height);
    }
  }

  // A decoded frame: {header, raw: Uint8Array | null, bitmap: ImageBitmap | null, mask: Uint8Array | null}.
  draw(frame) {
    const { width, height } = frame.header;
    this.resize(width, height);
    if (frame.raw) {
      this.image.data.set(frame.raw);
      this.ctx.putImageData(this.image, 0, 0);
    } else {
      this.ctx.drawImage(frame.bitmap, 0, 0);
      frame.bitmap.close();
    }
    if (this.coverage && frame.mask) {
      this.observedShare = this.paintOverlay(frame.mask, width * height);
      this.ctx.drawImage(this.overlay, 0, 0);
    } else {
      this.observedShare = frame.mask ? this.countObserved(frame.mask, width * height) : null;
    }
  }

  // Mask bits (row-major, most significant bit first; 1 = seen) -> the overlay's pixels; returns the seen share.
  paintOverlay(mask, pixels) {
    const out = this.overlayImage.data;
    let seen = 0;
    for (let i = 0; i < pixels; i++) {
      const bit = (mask[i >> 3] >> (7 - (i & 7))) & 1;
      const o = 4 * i;
      if (bit) {
        seen++;
        out[o + 3] = 0;
      } else {
        out[o] = TINT[0]; out[o + 1] = TINT[1]; out[o + 2] = TINT[2]; out[o + 3] = TINT[3];
      }
    }
    this.overlayCtx.putImageData(this.overlayImage, 0, 0);
    return seen / pixels;
  }

  countObserved(mask, pixels) {
    let seen = 0;
    for (let i = 0; i < pixels; i++) seen += (mask[i >> 3] >> (7 - (i & 7))) & 1;
    return seen / pixels;
  }

  // The canvas as shown (overlay included) as a PNG download.
  screenshot(name) {
    this.canvas.toBlob((blob) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }, "image/png");
  }
}

// Raw frames are ready at once; compressed ones are decoded off the main thread.
export async function decode({ header, image, mask }) {
  if (header.encoding === "raw") return { header, raw: image, bitmap: null, mask };
  const type = header.encoding === "webp" ? "image/webp" : "image/jpeg";
  const bitmap = await createImageBitmap(new Blob([image], { type }));
  return { header, raw: null, bitmap, mask };
}
