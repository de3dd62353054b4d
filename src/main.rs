fn main() {
    println!("vipwarden");
}
