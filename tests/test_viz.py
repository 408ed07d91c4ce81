"""Instance drawings: one stable colour per instance, outlines, and labelled boxes."""

import numpy as np

from segjax import viz


def test_instance_overlay_colours_each_instance_and_leaves_the_rest():
  image = np.full((12, 12, 3), 100, np.uint8)
  ids = np.zeros((12, 12), np.int32)
  ids[2:6, 2:6] = 4001
  ids[7:11, 7:11] = 4002
  ids[0, 11] = 255 * 1000  # void: not drawn
  out = viz.instance_overlay(image, ids, ignore_index=255)
  colours = viz.instance_colours(np.array([4001, 4002]))
  assert not np.array_equal(colours[0], colours[1])
  expected = (0.45 * 100 + 0.55 * colours[0].astype(np.float32)).round()
  np.testing.assert_array_equal(out[3, 3], expected)  # inside, off the outline
  np.testing.assert_array_equal(out[2, 3], [255, 255, 255])  # the outline's top edge
  np.testing.assert_array_equal(out[0, 0], image[0, 0])
  np.testing.assert_array_equal(out[0, 11], image[0, 11])


def test_labelled_boxes_take_their_instance_colour():
  image = np.zeros((40, 60, 3), np.uint8)
  out = viz.label_detections(
    image, np.array([[10, 20, 30, 35]], np.float32), ["car"], np.array([0.9]), ids=np.array([4001])
  )
  colour = viz.instance_colours(np.array([4001]))[0]
  np.testing.assert_array_equal(out[34, 20], colour)  # bottom edge of the box
  np.testing.assert_array_equal(out[27, 10], colour)  # left edge
  assert out[0:20].any()  # the caption above the box
  assert not out[36:].any()
