/** MediaPipe Face Mesh index sets the motion model uses. */

/** Number of Face Mesh points that take part in the warp (the 10 iris points do not). */
export const MESH_POINTS = 468;

/** The face outline, clockwise from the top of the forehead. */
export const FACE_OVAL = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
  172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
] as const;

/**
 * Points that move with the skull but not with expression (forehead, nose bridge, eye corners,
 * temples, cheekbones): the head pose is fitted on these. Brows, lids, mouth and jaw are left out.
 */
export const RIGID_POINTS = [
  10, 109, 338, 67, 297, 151, 9, 8, 168, 6, 197, 195, 33, 133, 362, 263, 130, 359, 127, 356, 234, 454, 116, 345,
] as const;

/** Inner lip contour, a closed polygon: image-left corner, upper lip, image-right corner, lower lip. */
export const INNER_LIPS = [
  78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
] as const;

/** Outer lip contour, a closed polygon in the same order. */
export const OUTER_LIPS = [
  61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
] as const;

/** Upper and lower inner-lip points facing each other across the mouth opening. */
export const INNER_LIP_PAIRS = [
  [191, 95],
  [80, 88],
  [81, 178],
  [82, 87],
  [13, 14],
  [312, 317],
  [311, 402],
  [310, 318],
  [415, 324],
] as const;

/** Per eye, upper and lower lid points facing each other across the eye, from corner to corner. */
export const EYE_LID_PAIRS = [
  [
    [246, 7],
    [161, 163],
    [160, 144],
    [159, 145],
    [158, 153],
    [157, 154],
    [173, 155],
  ],
  [
    [466, 249],
    [388, 390],
    [387, 373],
    [386, 374],
    [385, 380],
    [384, 381],
    [398, 382],
  ],
] as const;

/**
 * Per eye, the ring of points above the upper lid (the lid's fold), one for each lid pair of
 * EYE_LID_PAIRS in the same order: a closing lid stretches the skin between them.
 */
export const EYE_FOLDS = [
  [247, 30, 29, 27, 28, 56, 190],
  [467, 260, 259, 257, 258, 286, 414],
] as const;

/** The brows, image-left and image-right, upper and lower edges. */
export const BROWS = [
  [70, 63, 105, 66, 107, 46, 53, 52, 65, 55],
  [300, 293, 334, 296, 336, 276, 283, 282, 295, 285],
] as const;

/** Eye corners: their distance is the face's size unit. */
export const EYE_OUTER_CORNERS = [33, 263] as const;
