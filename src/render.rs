//! Turns batches of images into one RGBA grid, ready for `putImageData` on a 2D canvas.

/// An RGBA8 picture: `pixels.len() == width * height * 4`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgba {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGBA bytes.
    pub pixels: Vec<u8>,
}

/// Gap between tiles, in pixels, so neighbouring samples stay distinguishable.
const GAP: usize = 1;
/// Gap colour: mid gray reads as "not an image" on dark and light samples alike.
const GAP_GRAY: u8 = 64;

/// Lays out `count` images of `size`x`size` in a grid `cols` wide. `value(n, y, x, c)` gives
/// channel `c` (of `channels`, 1 or 3) of image `n` as a byte.
fn grid(
    count: usize,
    size: usize,
    channels: usize,
    cols: usize,
    value: impl Fn(usize, usize, usize, usize) -> u8,
) -> Rgba {
    let cols = cols.clamp(1, count.max(1));
    let rows = count.div_ceil(cols);
    let width = cols * size + (cols + 1) * GAP;
    let height = rows * size + (rows + 1) * GAP;
    let mut pixels = [GAP_GRAY, GAP_GRAY, GAP_GRAY, 255].repeat(width * height);
    for n in 0..count {
        let (ox, oy) = (
            GAP + (n % cols) * (size + GAP),
            GAP + (n / cols) * (size + GAP),
        );
        for y in 0..size {
            for x in 0..size {
                let o = ((oy + y) * width + ox + x) * 4;
                for c in 0..3 {
                    pixels[o + c] = value(n, y, x, if channels == 1 { 0 } else { c });
                }
                pixels[o + 3] = 255;
            }
        }
    }
    Rgba {
        width,
        height,
        pixels,
    }
}

/// Grid of generator outputs: `[N, C, H, W]` floats in [-1, 1].
pub fn grid_from_nchw(data: &[f32], size: usize, channels: usize, cols: usize) -> Rgba {
    let count = data.len() / (size * size * channels);
    grid(count, size, channels, cols, |n, y, x, c| {
        to_byte(data[((n * channels + c) * size + y) * size + x])
    })
}

/// A generator output value in [-1, 1] as a pixel byte.
pub fn to_byte(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Grid of stored images: `[N, H, W, C]` bytes.
pub fn grid_from_nhwc(data: &[u8], size: usize, channels: usize, cols: usize) -> Rgba {
    let count = data.len() / (size * size * channels);
    grid(count, size, channels, cols, |n, y, x, c| {
        data[((n * size + y) * size + x) * channels + c]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_tiles_and_maps_range() {
        // Two 1x1 RGB images: black (-1) and white (+1).
        let data = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0];
        let g = grid_from_nchw(&data, 1, 3, 2);
        assert_eq!((g.width, g.height), (5, 3));
        let px = |x: usize, y: usize| &g.pixels[(y * g.width + x) * 4..][..4];
        assert_eq!(px(1, 1), [0, 0, 0, 255]);
        assert_eq!(px(3, 1), [255, 255, 255, 255]);
        assert_eq!(px(0, 0), [GAP_GRAY, GAP_GRAY, GAP_GRAY, 255], "opaque gaps");
    }
}
