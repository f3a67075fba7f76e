// checkout.js: placeholder, written by the checkout helper
