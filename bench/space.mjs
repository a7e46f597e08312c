// The benchmark space shared by the evaluation benches (e2e, fleet): 20
// audiences and 10 computed traits of an e-commerce space over a handful of
// event names, and the event mix that drives them.
// The space: 20 audiences and 10 computed traits over a handful of event names.
export const AUDIENCES = [
  "event('Order Completed').count() >= 1",
  "event('Order Completed').count() >= 3",
  "event('Order Completed').within(30 days).count() >= 2",
  "event('Order Completed').within(7 days).sum(property('revenue')) > 200",
  "event('Order Completed').where(property('revenue') > 100).count() >= 1",
  "event('Product Viewed').count() >= 5",
  "event('Product Viewed').within(1 days).count() >= 2",
  "event('Product Viewed').where(property('category') = 'shoes').count() >= 2",
  "event('Added To Cart').count() >= 1 AND NOT event('Order Completed').count() >= 1",
  "event('Added To Cart').within(7 days).count() >= 2",
  "event('Signed Up').count() >= 1",
  "event('Signed Up').count() >= 1 AND event('Order Completed').count() = 0",
  "event('Page Viewed').count() >= 10",
  "event('Product Viewed').where(property('price') >= 50).within(30 days).count() >= 1",
  "trait('lifetime_revenue') > 500",
  "trait('orders') >= 2 AND trait('views') >= 3",
  "trait('favorite_category') = 'shoes'",
  "event('Order Completed').count() >= 1 OR event('Added To Cart').count() >= 2",
  "event('Order Completed').where(property('category') = 'books').count() >= 1",
  "event('Product Viewed').count() >= 1 AND NOT event('Added To Cart').count() >= 1",
];
export const TRAITS = [
  ['Orders', "event('Order Completed').count()"],
  ['Views', "event('Product Viewed').count()"],
  ['Lifetime Revenue', "event('Order Completed').sum(property('revenue'))"],
  ['Average Order', "event('Order Completed').avg(property('revenue'))"],
  ['Max Order', "event('Order Completed').max(property('revenue'))"],
  ['Favorite Category', "event('Product Viewed').mode(property('category'))"],
  ['Last Category', "event('Product Viewed').last(property('category'))"],
  ['First Order Category', "event('Order Completed').first(property('category'))"],
  ['Categories Viewed', "event('Product Viewed').unique(property('category')).count()"],
  ['Latency Probe', "event('Latency Probe').count()"],
];
export const NAMES = ['Order Completed', 'Product Viewed', 'Product Viewed', 'Product Viewed', 'Added To Cart', 'Signed Up', 'Page Viewed'];
export const CATEGORIES = ['shoes', 'books', 'toys', 'garden', 'music'];
