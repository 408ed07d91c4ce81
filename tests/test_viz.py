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


def _panoptic_scene():
  """Class 0 stuff (top), class 2 stuff (bottom), two class-1 things, void in a corner."""
  ids = np.zeros((12, 12), np.int32)
  ids[8:] = 2000
  ids[2:6, 1:5] = 1001
  ids[2:6, 5:9] = 1002
  ids[0:2, 10:12] = 255_000
  return ids


def test_panoptic_overlay_blends_class_colours_and_leaves_void():
  image = np.full((12, 12, 3), 100, np.uint8)
  ids = _panoptic_scene()
  out = viz.panoptic_overlay(image, ids, num_classes=3, things=(1,))
  np.testing.assert_array_equal(out[0:2, 10:12], image[0:2, 10:12])  # void
  for (row, col), cls in [((0, 0), 0), ((11, 6), 2)]:
    expected = (0.45 * 100 + 0.55 * viz.palette(3)[cls].astype(np.float32)).round()
    np.testing.assert_array_equal(out[row, col], expected)


def test_panoptic_overlay_draws_boundaries_white():
  image = np.full((12, 12, 3), 100, np.uint8)
  out = viz.panoptic_overlay(image, _panoptic_scene(), num_classes=3, things=(1,))
  white = [255, 255, 255]
  np.testing.assert_array_equal(out[2, 2], white)  # top of instance 1001, below stuff
  np.testing.assert_array_equal(out[3, 5], white)  # left of 1002, next to 1001
  np.testing.assert_array_equal(out[8, 3], white)  # top of the bottom stuff
  np.testing.assert_array_equal(out[0:2, 9], [white, white])  # stuff next to void: stuff's side
  assert not (out[3, 6] == 255).all() and not (out[0, 0] == 255).all()


def test_panoptic_colours_are_stable_and_set_instances_apart():
  ids = _panoptic_scene()
  colours = viz.panoptic_colours(ids, num_classes=3, things=(1,))
  np.testing.assert_array_equal(colours, viz.panoptic_colours(ids, num_classes=3, things=(1,)))
  first, second = colours[3, 2].astype(int), colours[3, 6].astype(int)
  assert np.abs(first - second).max() >= 20
  class_colour = viz.palette(3)[1].astype(int)
  assert np.abs(first - class_colour).max() <= 40 and np.abs(second - class_colour).max() <= 40
  np.testing.assert_array_equal(colours[0, 0], viz.palette(3)[0])  # stuff: the class colour
  np.testing.assert_array_equal(colours[0, 11], viz.VOID_COLOUR)
